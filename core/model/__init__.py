"""Bar blocks, their derivation, indicator definitions and SessionData: numpy (and TA-Lib) only."""
