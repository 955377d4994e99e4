package main

import "os"

// The end-to-end tests of this package create keys, aliases and import
// parameters much faster than AWS's default request quotas allow (CreateKey
// 5/s, GetParametersForImport one per 4 s) and use clients without
// retries; they run with the quotas off. The quota test turns them on with
// a configuration file of its own (e2e_quota_test.go).
func init() { os.Setenv("KMSD_QUOTAS", "off") }
