# Small bottleneck (more compression)
model_small = Autoencoder(
    input_dim=32,
    encoding_dim=8,  # Smaller encoding
    intermediate_dim=4
)

# Large bottleneck (less compression)
model_large = Autoencoder(
    input_dim=32,
    encoding_dim=24,  # Larger encoding
    intermediate_dim=16
)

# Deep architecture (more layers)
# Note: You may need to modify the model to add more layers
model_deep = Autoencoder(
    input_dim=32,
    encoding_dim=16,
    intermediate_dim=8
)
