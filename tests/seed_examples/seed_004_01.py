np.random.seed(42) # For reproducibility
time_points = np.arange(0, 200, 0.5)
# Base normal signal
normal_signal = np.sin(time_points * 0.5) + \
    np.random.normal(0, 0.1, len(time_points))
# Inject some anomalies
data_with_anomalies = normal_signal.copy()
data_with_anomalies[50:60] += 2.0 # A positive spike/shift
data_with_anomalies[150:155] -= 1.5 # A negative dip/shift

df_exercise = pd.DataFrame({
    'Time': time_points,
    'Value': data_with_anomalies
    })
print("Generated data shape for exercise:", df_exercise.shape)

# Let's visualize our data
plt.figure(figsize=(12, 3))
plt.plot(df_exercise['Time'], df_exercise['Value'],
    label='Data with Injected Anomalies')
plt.title("Synthetic Time Series for Anomaly Detection Exercise")
plt.xlabel("Time Index")
plt.ylabel("Value")
plt.legend()
plt.grid(True)
# To save for documentation:
# plt.savefig(os.path.join(
# exercise_output_dir, "exercise_ad_synthetic_data.png"))
plt.show()
