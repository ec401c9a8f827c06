import numpy as np
import pandas as pd
import tensorflow as tf
import matplotlib.pyplot as plt
from sklearn.preprocessing import StandardScaler
import warnings
import os

# FusionLab imports
from anomaly_models import LSTMAutoencoderAnomaly
from anomaly_models import create_sequences # For sequence prep

# Suppress warnings and TF logs for cleaner output
warnings.filterwarnings('ignore')
tf.get_logger().setLevel('ERROR')
if hasattr(tf, 'autograph'): # Check for autograph availability
    tf.autograph.set_verbosity(0)

# Directory for saving any output images from this exercise
exercise_output_dir = "./anomaly_detection_exercise_outputs"
os.makedirs(exercise_output_dir, exist_ok=True)

print("Libraries imported for LSTM Autoencoder exercise.")
