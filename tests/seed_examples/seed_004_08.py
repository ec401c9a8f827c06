import tensorflow as tf
from anomaly_models import SequenceAnomalyScoreLayer
print("\nLibraries imported for SequenceAnomalyScoreLayer exercise.")
