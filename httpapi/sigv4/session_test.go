package sigv4

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"hsmkms/kms"
)

// TestVerifySessionTokens checks temporary credentials: the token must be
// present exactly for them and match by hash; after Expiration the answer
// is ExpiredTokenException; a long-term key with a token is refused.
func TestVerifySessionTokens(t *testing.T) {
	t.Parallel()
	const token = "FwoGZXIvYXdzEXAMPLETOKEN=="
	sum := sha256.Sum256([]byte(token))
	keys := keyMap{
		testKeyID: testKeys[testKeyID],
		"ASIALIVE": {ID: "ASIALIVE", Secret: testSecret, AccountID: "111122223333", Active: true,
			PrincipalARN: "arn:aws:sts::111122223333:assumed-role/r/s", SessionTokenHash: sum[:], Expiration: testNow.Add(time.Minute)},
		"ASIAOLD": {ID: "ASIAOLD", Secret: testSecret, AccountID: "111122223333", Active: true,
			PrincipalARN: "arn:aws:sts::111122223333:assumed-role/r/s", SessionTokenHash: sum[:], Expiration: testNow},
	}
	v := &Verifier{Region: testRegion, Service: "kms", Keys: keys, Now: func() time.Time { return testNow }}
	cases := []struct {
		name, id, token string
		code            kms.Code // "" = accepted
		message         string
	}{
		{"session with its token", "ASIALIVE", token, "", ""},
		{"session without a token", "ASIALIVE", "", kms.CodeUnrecognizedClient, msgInvalidToken},
		{"session with another token", "ASIALIVE", token + "x", kms.CodeUnrecognizedClient, msgInvalidToken},
		{"expired session", "ASIAOLD", token, kms.CodeExpiredToken, "The security token included in the request is expired"},
		{"expired session, wrong token", "ASIAOLD", "nope", kms.CodeUnrecognizedClient, msgInvalidToken},
		{"long-term key with a token", testKeyID, token, kms.CodeUnrecognizedClient, msgInvalidToken},
		{"long-term key without a token", testKeyID, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := defaultSignOpts()
			o.creds = aws.Credentials{AccessKeyID: tc.id, SecretAccessKey: testSecret, SessionToken: tc.token}
			res, err := v.Verify(t.Context(), signedRequest(t, o), []byte(o.body))
			if tc.code == "" {
				if err != nil || res.Key.ID != tc.id {
					t.Fatalf("Verify = %+v, %v; want accepted", res.Key.ID, err)
				}
				return
			}
			assertError(t, err, tc.code, tc.message, "")
		})
	}
}
