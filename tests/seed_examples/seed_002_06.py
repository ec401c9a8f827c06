# Save model
model.save('autoencoder_model.keras')

# Load model
loaded_model = keras.models.load_model('autoencoder_model.keras')

# Save weights only
model.save_weights('autoencoder_weights.weights.h5')

# Load weights
model_new = Autoencoder(input_dim=32, encoding_dim=16)
model_new.load_weights('autoencoder_weights.weights.h5')
