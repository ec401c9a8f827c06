latent_dim_ae = 8
lstm_units_ae = 16 # Units in LSTM layers

lstm_ae_model_ex = LSTMAutoencoderAnomaly(
    latent_dim=latent_dim_ae,
    lstm_units=lstm_units_ae,
    n_features=X_train_ae.shape[-1], # Should be 1
    n_repeats=sequence_len_ex, # Output sequence length
    num_encoder_layers=1,
    num_decoder_layers=1,
    activation='linear' # Good for reconstructing potentially unbounded scaled data
    )
print("\nLSTM Autoencoder model defined.")
