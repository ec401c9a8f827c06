from anomaly_models.utils.data_analyzer import DataAnalyzer
import pandas as pd

# Create preprocessing model
df = pd.DataFrame(np.random.randn(1000, 32))
analyzer = DataAnalyzer(df)
preprocessing_model = analyzer.create_preprocessing_model()

# Create model with preprocessing
model = Autoencoder(
    input_dim=32,
    encoding_dim=16,
    preprocessing_model=preprocessing_model
)

# Train
model.fit(X_train, X_train, epochs=50)
