"""Sliding-window generator (SWG) of convolutions: FINN's ConvolutionInputGenerator_rtl under the kernel contract."""
