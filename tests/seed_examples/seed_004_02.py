scaler_ad_ex = StandardScaler()
df_exercise['Value_Scaled'] = scaler_ad_ex.fit_transform(
    df_exercise[['Value']]
    )
print("\nData scaled using StandardScaler.")

sequence_len_ex = 20 # Length of sequences for the autoencoder

# Using create_sequences: target_col is 'Value_Scaled',
# forecast_horizon=0 means reconstruct the input sequence itself.
sequences_ex, _ = create_sequences(
    df_exercise[['Value_Scaled']],
    sequence_length=sequence_len_ex,
    target_col='Value_Scaled',
    forecast_horizon=0, # Reconstruct the input sequence
    drop_last=False, # Keep all possible sequences
    verbose=0
    )
# For autoencoder, input (X) and target (y) are the same
X_train_ae = sequences_ex.reshape(
    sequences_ex.shape[0], sequence_len_ex, 1 # Features=1
    ).astype(np.float32)
y_train_ae = X_train_ae.copy() # Target is the input itself

print(f"Created sequences for autoencoder. X_train shape: "
    f"{X_train_ae.shape}")
