package kms

// SetMaxKeysPerAccount lowers the keys-per-account quota for a test and
// returns the restore.
func SetMaxKeysPerAccount(n int) (restore func()) {
	old := maxKeysPerAccount
	maxKeysPerAccount = n
	return func() { maxKeysPerAccount = old }
}
