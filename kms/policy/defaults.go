package policy

// MaxKeyPolicySize is KMS's key policy size limit (32 KiB); larger
// documents get LimitExceededException.
const MaxKeyPolicySize = 32768

// CheckSize returns an *Error of KindTooLarge when doc is over limit bytes
// (use MaxKeyPolicySize for key policies).
func CheckSize(doc string, limit int) error {
	if len(doc) > limit {
		return &Error{Kind: KindTooLarge, Message: "Policy document exceeds the maximum size of 32 KB (32768 bytes)."}
	}
	return nil
}

// ValidCharacters reports whether doc uses only the characters the
// PutKeyPolicy Policy member allows: tab, LF, CR and U+0020..U+00FF. (A
// violation is a ValidationException, checked before Parse.)
func ValidCharacters(doc string) bool {
	for _, r := range doc {
		if r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r > 0xFF) {
			return false
		}
	}
	return true
}

// DefaultKeyPolicy returns the key policy CreateKey attaches when the
// request has none, byte for byte as AWS returns it from GetKeyPolicy
// (Jackson pretty-print: two-space indent, " : " separators, "[ {").
func DefaultKeyPolicy(accountID string) string {
	return `{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::` + accountID + `:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}`
}
