"""MediaPipe's selfie segmentation ported to torch: the TFLite reader, the network, its weight
conversion, MediaPipe's resampling in and out, and the ``selfie-torch`` matting stage."""
