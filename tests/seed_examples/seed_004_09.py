# Assume 'learned_features_ex2' is the output of a preceding layer
# Shape: (Batch, FeatureDim)
batch_size_ex2 = 16
feature_dim_ex2 = 64 # Example dimension of learned features
learned_features_ex2 = tf.random.normal(
    (batch_size_ex2, feature_dim_ex2), dtype=tf.float32
    )

# Instantiate the scoring layer
anomaly_scorer_ex2 = SequenceAnomalyScoreLayer(
    hidden_units=[32, 16], # Define MLP structure within the layer
    activation='relu',
    dropout_rate=0.1,
    final_activation='linear' # Output an unbounded score
    )

# Pass features through the layer to get scores
# In a real model, this happens within its 'call' method.
anomaly_scores_ex2 = anomaly_scorer_ex2(
    learned_features_ex2, training=False # Set training appropriately
    )

print(f"\nInput features shape for scorer: {learned_features_ex2.shape}")
print(f"Output anomaly scores shape: {anomaly_scores_ex2.shape}")
print("Sample scores:", anomaly_scores_ex2.numpy()[:5].flatten())
