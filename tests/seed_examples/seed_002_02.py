# Create model with custom threshold
model = Autoencoder(
    input_dim=32,
    encoding_dim=16,
    threshold=3.0  # Higher threshold = fewer anomalies detected
)

# Or update threshold after training
model.update_threshold(2.5)
