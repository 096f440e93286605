"""ssmkit plugin for sensor streams and time series: HiSS, forecasting, classification."""
