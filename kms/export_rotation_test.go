package kms

// SetRotationFault installs a fault hook in the rotation path for a test
// and returns a function that removes it.
func SetRotationFault(f func(stage string) error) (restore func()) {
	old := rotationFault
	rotationFault = f
	return func() { rotationFault = old }
}

// DataKeyPairSpecs are the KeyPairSpec values GenerateDataKeyPair accepts.
var DataKeyPairSpecs = dataKeyPairSpecs
