print("\nCalculating reconstruction errors...")
reconstruction_errors_ex = lstm_ae_model_ex.compute_reconstruction_error(
    X_train_ae # Pass all sequences to get their errors
    ).numpy() # Get as NumPy array
print(f"Reconstruction errors shape: {reconstruction_errors_ex.shape}")

# Map sequence errors back to original time points for plotting
# (Assign error of a sequence to its last point for simplicity)
errors_mapped_ex = np.full(len(df_exercise), np.nan)
for i in range(len(reconstruction_errors_ex)):
    # Ensure index is within bounds
    end_point_idx = i + sequence_len_ex - 1
    if end_point_idx < len(errors_mapped_ex):
        errors_mapped_ex[end_point_idx] = reconstruction_errors_ex[i]

df_exercise['ReconstructionError'] = errors_mapped_ex
