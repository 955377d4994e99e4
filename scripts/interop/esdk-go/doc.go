// Package interop tests the envelope library and kmsctl against the
// official AWS Encryption SDKs (Go v0.4.0 and JavaScript 5.x) with a real
// kmsd. It is a separate module so that the product does not depend on the
// ESDK for Go (its size, and the data races it shows under -race); it runs
// from scripts/test without -race.
package interop
