# Configuration for dummy data
batch_size_ex3 = 4
time_steps_ex3 = 10
features_ex3 = 1 # Univariate example

# Dummy true values
y_true_ex3 = tf.random.normal(
    (batch_size_ex3, time_steps_ex3, features_ex3), dtype=tf.float32
    )
# Dummy predicted values with some errors
y_pred_ex3_np = y_true_ex3.numpy() + np.random.normal(
    scale=0.5, size=y_true_ex3.shape
    ).astype(np.float32)
# Inject a larger error into one sample's prediction
y_pred_ex3_np[1, 3, 0] += 4.0 # Large error for sample 1, time step 3
y_pred_ex3 = tf.constant(y_pred_ex3_np)

# --- Instantiate with MAE and Mean Aggregation ---
error_scorer_mean_ex3 = PredictionErrorAnomalyScore(
    error_metric='mae', # Use Mean Absolute Error
    aggregation='mean' # Average errors across time steps
    )
anomaly_scores_mean_ex3 = error_scorer_mean_ex3([y_true_ex3, y_pred_ex3])

# --- Instantiate with MAE and Max Aggregation ---
error_scorer_max_ex3 = PredictionErrorAnomalyScore(
    error_metric='mae',
    aggregation='max' # Take max error across time steps
    )
anomaly_scores_max_ex3 = error_scorer_max_ex3([y_true_ex3, y_pred_ex3])

print(f"\nInput y_true shape: {y_true_ex3.shape}")
print(f"Input y_pred shape: {y_pred_ex3.shape}")
print("\n--- MAE + Mean Aggregation ---")
print(f"Output anomaly scores shape: {anomaly_scores_mean_ex3.shape}")
print(f"Example Scores (Mean Error per sequence): \n"
    f"{anomaly_scores_mean_ex3.numpy().flatten()}")
print("\n--- MAE + Max Aggregation ---")
print(f"Output anomaly scores shape: {anomaly_scores_max_ex3.shape}")
print(f"Example Scores (Max Error per sequence): \n"
    f"{anomaly_scores_max_ex3.numpy().flatten()}")
