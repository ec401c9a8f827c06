# Train model
model.fit(X_train, X_train, epochs=50)

# Detect anomalies
anomaly_results = model.is_anomaly(test_data)

# Access results
reconstruction_error = anomaly_results['reconstruction_error']
is_anomaly = anomaly_results['anomaly']
anomaly_score = anomaly_results['anomaly_score']

print(f"Anomalies detected: {is_anomaly.numpy().sum()}")
print(f"Anomaly scores: {anomaly_score.numpy()[:5]}")
