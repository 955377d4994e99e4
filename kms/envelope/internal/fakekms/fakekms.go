// Package fakekms is an in-memory stand-in for the AWS SDK KMS client, for
// the envelope library's unit tests: symmetric keys only, the encryption
// context bound as AAD, ARNs in every KeyId, and call counters.
package fakekms

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Account and Region of every fake key ARN.
const (
	Account = "111122223333"
	Region  = "us-east-1"
)

// Client is the fake. The zero value is not usable; call New.
type Client struct {
	mu      sync.Mutex
	keys    map[string]cipher.AEAD // by ARN
	aliases map[string]string      // alias name -> ARN

	GenerateDataKeyCalls atomic.Int64
	EncryptCalls         atomic.Int64
	DecryptCalls         atomic.Int64
}

// New returns a fake with no keys.
func New() *Client {
	return &Client{keys: map[string]cipher.AEAD{}, aliases: map[string]string{}}
}

// CreateKey adds a key and returns its ARN; account "" means Account.
func (c *Client) CreateKey(account string) string {
	if account == "" {
		account = Account
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	b, _ := aes.NewCipher(k)
	g, _ := cipher.NewGCM(b)
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	arn := fmt.Sprintf("arn:aws:kms:%s:%s:key/%x-%x-%x-%x-%x", Region, account, id[:4], id[4:6], id[6:8], id[8:10], id[10:])
	c.mu.Lock()
	c.keys[arn] = g
	c.mu.Unlock()
	return arn
}

// Alias names a key.
func (c *Client) Alias(name, arn string) {
	c.mu.Lock()
	c.aliases[name] = arn
	c.mu.Unlock()
}

func (c *Client) resolve(id string) (string, cipher.AEAD, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.aliases[id]; ok {
		id = a
	}
	if k, ok := c.keys[id]; ok {
		return id, k, nil
	}
	for arn, k := range c.keys {
		if strings.HasSuffix(arn, ":key/"+id) {
			return arn, k, nil
		}
	}
	return "", nil, &types.NotFoundException{Message: aws.String("Key '" + id + "' does not exist")}
}

func aad(arn string, ec map[string]string) []byte {
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := []byte(arn)
	for _, k := range keys {
		b = fmt.Appendf(b, "|%q=%q", k, ec[k])
	}
	return b
}

func (c *Client) seal(arn string, k cipher.AEAD, pt []byte, ec map[string]string) []byte {
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	blob := append([]byte(arn+"\x00"), nonce...)
	return k.Seal(blob, nonce, pt, aad(arn, ec))
}

// GenerateDataKey implements envelope.KMSClient.
func (c *Client) GenerateDataKey(ctx context.Context, in *awskms.GenerateDataKeyInput, _ ...func(*awskms.Options)) (*awskms.GenerateDataKeyOutput, error) {
	c.GenerateDataKeyCalls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	arn, k, err := c.resolve(aws.ToString(in.KeyId))
	if err != nil {
		return nil, err
	}
	n := int(aws.ToInt32(in.NumberOfBytes))
	pt := make([]byte, n)
	_, _ = rand.Read(pt)
	return &awskms.GenerateDataKeyOutput{KeyId: aws.String(arn), Plaintext: pt, CiphertextBlob: c.seal(arn, k, pt, in.EncryptionContext)}, nil
}

// Encrypt implements envelope.KMSClient.
func (c *Client) Encrypt(ctx context.Context, in *awskms.EncryptInput, _ ...func(*awskms.Options)) (*awskms.EncryptOutput, error) {
	c.EncryptCalls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	arn, k, err := c.resolve(aws.ToString(in.KeyId))
	if err != nil {
		return nil, err
	}
	return &awskms.EncryptOutput{KeyId: aws.String(arn), CiphertextBlob: c.seal(arn, k, in.Plaintext, in.EncryptionContext)}, nil
}

// Decrypt implements envelope.KMSClient.
func (c *Client) Decrypt(ctx context.Context, in *awskms.DecryptInput, _ ...func(*awskms.Options)) (*awskms.DecryptOutput, error) {
	c.DecryptCalls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	blob := in.CiphertextBlob
	i := strings.IndexByte(string(blob), 0)
	if i < 0 || len(blob) < i+1+12+16 {
		return nil, &types.InvalidCiphertextException{}
	}
	arn, k, err := c.resolve(string(blob[:i]))
	if err != nil {
		return nil, &types.InvalidCiphertextException{}
	}
	if want := aws.ToString(in.KeyId); want != "" {
		wantARN, _, err := c.resolve(want)
		if err != nil {
			return nil, err
		}
		if wantARN != arn {
			return nil, &types.IncorrectKeyException{Message: aws.String("The key ID in the request does not identify a CMK that can perform this operation.")}
		}
	}
	pt, err := k.Open(nil, blob[i+1:i+13], blob[i+13:], aad(arn, in.EncryptionContext))
	if err != nil {
		return nil, &types.InvalidCiphertextException{}
	}
	return &awskms.DecryptOutput{KeyId: aws.String(arn), Plaintext: pt}, nil
}
