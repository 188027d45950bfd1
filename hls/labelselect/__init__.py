"""Top-1 LabelSelect (argmax) kernel: reference, RTL generator, registration."""
