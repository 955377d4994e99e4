package kms

// RotationRetryBackoff is rotationRetryBackoff, for tests.
const RotationRetryBackoff = rotationRetryBackoff
