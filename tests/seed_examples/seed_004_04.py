lstm_ae_model_ex.compile(optimizer='adam', loss='mse')
print("Autoencoder compiled. Starting training...")

# Build the model with input shape before fitting
lstm_ae_model_ex.build(input_shape=(None, sequence_len_ex, X_train_ae.shape[-1]))
# lstm_ae_model_ex.summary() # Optional: view model structure

history_ae = lstm_ae_model_ex.fit(
    X_train_ae, y_train_ae, # Input and target are the same
    epochs=20, # Train for more epochs for better learning
    batch_size=16,
    shuffle=True, # Shuffle sequences during training
    verbose=0 # Suppress Keras fit logs for this example
    )
print("Training finished.")
if history_ae and history_ae.history.get('loss'):
    print(f"Final training loss (MSE): {history_ae.history['loss'][-1]:.4f}")
