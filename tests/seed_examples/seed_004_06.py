# Define threshold (e.g., based on error distribution percentile)
# Ensure to use only non-NaN errors for percentile calculation
valid_errors_ex = df_exercise['ReconstructionError'].dropna()
if not valid_errors_ex.empty:
    threshold_ex = np.percentile(valid_errors_ex, 95)
    df_exercise['Is_Anomaly'] = df_exercise['ReconstructionError'] > threshold_ex
    print(f"\nAnomaly threshold (95th percentile error): {threshold_ex:.4f}")
    print(f"Number of points flagged as anomalies: {df_exercise['Is_Anomaly'].sum()}")
else:
    print("\nNo valid reconstruction errors to calculate threshold.")
    df_exercise['Is_Anomaly'] = False # Default if no errors
