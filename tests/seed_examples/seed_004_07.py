fig_ae, ax_ae = plt.subplots(2, 1, figsize=(14, 8), sharex=True)

ax_ae[0].plot(df_exercise['Time'], df_exercise['Value'],
    label='Original Data', zorder=1)
anomalies_ex = df_exercise[df_exercise['Is_Anomaly']]
if not anomalies_ex.empty:
    ax_ae[0].scatter(anomalies_ex['Time'], anomalies_ex['Value'],
        color='red', label='Detected Anomaly',
        zorder=5, s=50)
ax_ae[0].set_ylabel('Value')
ax_ae[0].set_title('Time Series with Detected Anomalies (LSTM Autoencoder)')
ax_ae[0].legend(); ax_ae[0].grid(True)

ax_ae[1].plot(df_exercise['Time'], df_exercise['ReconstructionError'],
    label='Reconstruction Error (MSE per Sequence)',
    color='orange')
if 'threshold_ex' in locals() and np.isfinite(threshold_ex):
    ax_ae[1].axhline(threshold_ex, color='red', linestyle='--',
        label=f'Threshold ({threshold_ex:.2f})')
ax_ae[1].set_ylabel('Reconstruction Error (MSE)')
ax_ae[1].set_xlabel('Time')
ax_ae[1].set_title('Reconstruction Error and Anomaly Threshold')
ax_ae[1].legend(); ax_ae[1].grid(True)

plt.tight_layout()
# To save for documentation:
# plt.savefig(os.path.join(
# exercise_output_dir, "exercise_ad_lstm_ae_results.png"))
plt.show()
