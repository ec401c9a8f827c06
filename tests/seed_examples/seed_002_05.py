import keras

# Create metrics
accuracy_metric = keras.metrics.BinaryAccuracy()
precision_metric = keras.metrics.Precision()
recall_metric = keras.metrics.Recall()

# Get predictions
anomaly_results = model.is_anomaly(test_data)
predicted_anomalies = anomaly_results['anomaly'].numpy().astype(np.float32)

# Update metrics
test_labels = (test_labels > 0).astype(np.float32)  # Convert to binary
accuracy_metric.update_state(test_labels, predicted_anomalies)
precision_metric.update_state(test_labels, predicted_anomalies)
recall_metric.update_state(test_labels, predicted_anomalies)

print(f"Accuracy: {accuracy_metric.result().numpy()}")
print(f"Precision: {precision_metric.result().numpy()}")
print(f"Recall: {recall_metric.result().numpy()}")
