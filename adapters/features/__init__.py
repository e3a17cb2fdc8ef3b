"""Image features: size, colours, brightness, sharpness, layout and a feature vector."""
