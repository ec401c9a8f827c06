from anomaly_models.models import Autoencoder
import keras
import numpy as np

# Create model
model = Autoencoder(
    input_dim=32,
    encoding_dim=16,
    intermediate_dim=8,
    threshold=2.0
)

# Compile
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=0.001),
    loss='mse',
    metrics=['mae']
)

# Generate dummy data (normal patterns)
X_train = np.random.randn(1000, 32).astype('float32')

# Train on normal data
model.fit(X_train, X_train, epochs=50, batch_size=32)

# Detect anomalies
test_data = np.random.randn(100, 32).astype('float32')
reconstructions = model.predict(test_data)

# Get anomaly results
anomaly_results = model.is_anomaly(test_data)
print(anomaly_results.keys())  # ['reconstruction_error', 'anomaly', 'anomaly_score']
