"""Running trained models: exported ONNX graphs, the raw-EMG pipeline and chunked streaming."""
