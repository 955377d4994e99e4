package envelope

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"hsmkms/kms/envelope/format"
)

// KMSClient is the part of the AWS SDK for Go v2 KMS client the keyring
// uses; *kms.Client satisfies it, and tests substitute a fake. Any endpoint
// the client is configured for works (AWS KMS, kmsd, LocalStack).
type KMSClient interface {
	GenerateDataKey(ctx context.Context, in *awskms.GenerateDataKeyInput, optFns ...func(*awskms.Options)) (*awskms.GenerateDataKeyOutput, error)
	Encrypt(ctx context.Context, in *awskms.EncryptInput, optFns ...func(*awskms.Options)) (*awskms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *awskms.DecryptInput, optFns ...func(*awskms.Options)) (*awskms.DecryptOutput, error)
}

// KMSKeyring is the AWS KMS keyring (framework/aws-kms/aws-kms-keyring.md,
// aws-kms-discovery-keyring.md and aws-kms-multi-keyrings.md in one):
//
//   - encrypt: GenerateDataKey under Generator (or, when the materials
//     already carry a data key, Encrypt under it), then Encrypt under each
//     of AdditionalKeys; every result becomes an EDK "aws-kms"/<key ARN>;
//   - decrypt: try each "aws-kms" EDK whose key ARN is one of the
//     configured keys (or, in Discovery mode, any key that passes the
//     filter) until KMS decrypts one; KMS checks the encryption context,
//     which is bound to the data key as AAD.
type KMSKeyring struct {
	Client KMSClient
	// Generator makes the data key on encrypt; a key id, key ARN, alias
	// name or alias ARN. Required for encrypt.
	Generator string
	// AdditionalKeys each encrypt the data key too.
	AdditionalKeys []string
	// Discovery: decrypt with whatever key ARN an EDK names, subject to
	// DiscoveryFilter. When false, only EDKs whose ARN equals one of
	// Generator/AdditionalKeys (which must then be key ARNs, as with the
	// ESDK) are tried.
	Discovery       bool
	DiscoveryFilter *DiscoveryFilter
	GrantTokens     []string
}

// DiscoveryFilter limits discovery to keys of some accounts in a
// partition (e.g. "aws"). Both are required (aws-kms-discovery-keyring.md:
// the partitions "MUST match" and the accounts "MUST contain" the key's):
// a filter with either left empty is refused rather than read as "any".
type DiscoveryFilter struct {
	Partition  string
	AccountIDs []string
}

var _ Keyring = (*KMSKeyring)(nil)

// keyARN is a parsed "arn:<partition>:kms:<region>:<account>:key/<id>".
type keyARN struct {
	partition, region, account, id string
}

func parseKeyARN(s string) (keyARN, bool) {
	p := strings.SplitN(s, ":", 6)
	if len(p) != 6 || p[0] != "arn" || p[1] == "" || p[2] != "kms" || p[3] == "" || p[4] == "" {
		return keyARN{}, false
	}
	id, ok := strings.CutPrefix(p[5], "key/")
	if !ok || id == "" {
		return keyARN{}, false
	}
	return keyARN{p[1], p[3], p[4], id}, true
}

// OnEncrypt implements Keyring.
func (k *KMSKeyring) OnEncrypt(ctx context.Context, m *EncryptionMaterials) error {
	if k.Discovery {
		return newErr(KindInvalidArgument, "a discovery keyring cannot encrypt")
	}
	keys := k.AdditionalKeys
	if m.DataKey == nil {
		if k.Generator == "" {
			return newErr(KindInvalidArgument, "no generator key to make a data key")
		}
		out, err := k.Client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{
			KeyId:             aws.String(k.Generator),
			NumberOfBytes:     aws.Int32(int32(m.Suite.KeyLen)),
			EncryptionContext: m.EncryptionContext,
			GrantTokens:       k.GrantTokens,
		})
		if err != nil {
			return &Error{Kind: KindKMS, Detail: "GenerateDataKey " + k.Generator, Err: err}
		}
		arn := aws.ToString(out.KeyId)
		if _, ok := parseKeyARN(arn); !ok {
			return newErr(KindKMS, "GenerateDataKey returned KeyId %q, not a key ARN", arn)
		}
		if len(out.Plaintext) != m.Suite.KeyLen {
			return newErr(KindKMS, "GenerateDataKey returned %d bytes, want %d", len(out.Plaintext), m.Suite.KeyLen)
		}
		m.DataKey = out.Plaintext
		m.EncryptedDataKeys = append(m.EncryptedDataKeys, format.EDK{ProviderID: format.ProviderAWSKMS, ProviderInfo: []byte(arn), Ciphertext: out.CiphertextBlob})
	} else if k.Generator != "" {
		keys = append([]string{k.Generator}, keys...)
	}
	for _, id := range keys {
		out, err := k.Client.Encrypt(ctx, &awskms.EncryptInput{
			KeyId:             aws.String(id),
			Plaintext:         m.DataKey,
			EncryptionContext: m.EncryptionContext,
			GrantTokens:       k.GrantTokens,
		})
		if err != nil {
			return &Error{Kind: KindKMS, Detail: "Encrypt " + id, Err: err}
		}
		arn := aws.ToString(out.KeyId)
		if _, ok := parseKeyARN(arn); !ok {
			return newErr(KindKMS, "Encrypt returned KeyId %q, not a key ARN", arn)
		}
		m.EncryptedDataKeys = append(m.EncryptedDataKeys, format.EDK{ProviderID: format.ProviderAWSKMS, ProviderInfo: []byte(arn), Ciphertext: out.CiphertextBlob})
	}
	return nil
}

// accepts reports whether the keyring may try the EDK's key.
func (k *KMSKeyring) accepts(arn string) bool {
	parsed, ok := parseKeyARN(arn)
	if !ok {
		return false
	}
	if k.Discovery {
		f := k.DiscoveryFilter
		if f == nil {
			return true
		}
		if f.Partition != parsed.partition {
			return false
		}
		for _, a := range f.AccountIDs {
			if a == parsed.account {
				return true
			}
		}
		return false
	}
	if arn == k.Generator {
		return true
	}
	for _, id := range k.AdditionalKeys {
		if arn == id {
			return true
		}
	}
	return false
}

// checkDiscoveryFilter refuses a filter that names no partition or no
// account, which would otherwise admit every key of that dimension.
func (k *KMSKeyring) checkDiscoveryFilter() error {
	f := k.DiscoveryFilter
	if !k.Discovery || f == nil {
		return nil
	}
	if f.Partition == "" || len(f.AccountIDs) == 0 {
		return newErr(KindInvalidArgument, "a discovery filter needs a partition and at least one account")
	}
	for _, a := range f.AccountIDs {
		if a == "" {
			return newErr(KindInvalidArgument, "a discovery filter's account ids must not be empty")
		}
	}
	return nil
}

// OnDecrypt implements Keyring.
func (k *KMSKeyring) OnDecrypt(ctx context.Context, m *DecryptionMaterials, edks []format.EDK) error {
	if err := k.checkDiscoveryFilter(); err != nil {
		return err
	}
	var errs []error
	tried := 0
	for _, e := range edks {
		if e.ProviderID != format.ProviderAWSKMS {
			continue
		}
		if _, ok := parseKeyARN(string(e.ProviderInfo)); !ok {
			// aws-kms-keyring.md: the provider info "MUST be a valid AWS
			// KMS ARN with a resource type of key or OnDecrypt MUST fail".
			return newErr(KindMalformed, "an aws-kms encrypted data key names %q, not a key ARN", truncateInfo(e.ProviderInfo))
		}
		if !k.accepts(string(e.ProviderInfo)) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		tried++
		arn := string(e.ProviderInfo)
		out, err := k.Client.Decrypt(ctx, &awskms.DecryptInput{
			KeyId:             aws.String(arn),
			CiphertextBlob:    e.Ciphertext,
			EncryptionContext: m.EncryptionContext,
			GrantTokens:       k.GrantTokens,
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("%s: %w", arn, err))
			continue
		}
		if aws.ToString(out.KeyId) != arn {
			errs = append(errs, fmt.Errorf("%s: Decrypt answered for key %q", arn, aws.ToString(out.KeyId)))
			continue
		}
		if len(out.Plaintext) != m.Suite.KeyLen {
			errs = append(errs, fmt.Errorf("%s: data key of %d bytes, want %d", arn, len(out.Plaintext), m.Suite.KeyLen))
			continue
		}
		m.DataKey = out.Plaintext
		return nil
	}
	if tried == 0 {
		return newErr(KindWrongKey, "none of the message's %d encrypted data keys is under a key this keyring may use", len(edks))
	}
	return &Error{Kind: KindWrongKey, Detail: fmt.Sprintf("KMS decrypted none of %d candidate data keys", tried), Err: errors.Join(errs...)}
}

// truncateInfo bounds untrusted provider info quoted in an error.
func truncateInfo(b []byte) string {
	if len(b) > 128 {
		return string(b[:128]) + "..."
	}
	return string(b)
}
