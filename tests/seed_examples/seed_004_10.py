import tensorflow as tf
import numpy as np # For a more visible error injection
from anomaly_models import PredictionErrorAnomalyScore
print("\nLibraries imported for PredictionErrorAnomalyScore exercise.")
