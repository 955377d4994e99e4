// Command esdkbench is the baseline side of scripts/bench-envelope, run as
// a subprocess so that its peak memory can be measured on its own:
//
//	esdkbench esdk-encrypt KEY_ARN IN OUT   official Go ESDK, whole buffer
//	esdkbench esdk-decrypt KEY_ARN IN OUT
//	esdkbench gcm BYTES FRAME               plain AES-256-GCM sealing BYTES
//	                                        in FRAME-byte chunks (run it with
//	                                        GOMAXPROCS=1 for one core)
//
// It prints the seconds the operation took (excluding start-up and
// reading the input for the ESDK, which cannot stream).
package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha512"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	mpl "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygenerated"
	mpltypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygeneratedtypes"
	esdk "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygenerated"
	esdktypes "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygeneratedtypes"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "esdkbench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 3 && args[0] == "gcm" {
		total, _ := strconv.ParseInt(args[1], 10, 64)
		frame, _ := strconv.Atoi(args[2])
		blk, _ := aes.NewCipher(make([]byte, 32))
		g, _ := cipher.NewGCM(blk)
		buf := make([]byte, 64<<20)
		out := make([]byte, 0, frame+16)
		nonce := make([]byte, 12)
		start := time.Now()
		for done := int64(0); done < total; {
			for i := 0; i+frame <= len(buf) && done < total; i += frame {
				out = g.Seal(out[:0], nonce, buf[i:i+frame], nil)
				done += int64(frame)
			}
		}
		fmt.Println(time.Since(start).Seconds())
		return nil
	}
	if len(args) == 2 && args[0] == "sha384" {
		// The signed suites' bound: their signature hashes every byte of
		// the message with SHA-384, which is sequential.
		total, _ := strconv.ParseInt(args[1], 10, 64)
		buf := make([]byte, 64<<20)
		h := sha512.New384()
		start := time.Now()
		for done := int64(0); done < total; done += int64(len(buf)) {
			h.Write(buf)
		}
		h.Sum(nil)
		fmt.Println(time.Since(start).Seconds())
		return nil
	}
	if len(args) != 4 {
		return fmt.Errorf("usage: esdkbench esdk-encrypt|esdk-decrypt KEY_ARN IN OUT | gcm BYTES FRAME | sha384 BYTES")
	}
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	client := awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		if ep := os.Getenv("AWS_ENDPOINT_URL_KMS"); ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	})
	matProv, err := mpl.NewClient(mpltypes.MaterialProvidersConfig{})
	if err != nil {
		return err
	}
	kr, err := matProv.CreateAwsKmsKeyring(ctx, mpltypes.CreateAwsKmsKeyringInput{KmsClient: client, KmsKeyId: args[1]})
	if err != nil {
		return err
	}
	policy := mpltypes.ESDKCommitmentPolicyRequireEncryptAllowDecrypt
	c, err := esdk.NewClient(esdktypes.AwsEncryptionSdkConfig{CommitmentPolicy: &policy})
	if err != nil {
		return err
	}
	in, err := os.ReadFile(args[2])
	if err != nil {
		return err
	}
	start := time.Now()
	var out []byte
	switch args[0] {
	case "esdk-encrypt":
		res, err := c.Encrypt(ctx, esdktypes.EncryptInput{Plaintext: in, Keyring: kr})
		if err != nil {
			return err
		}
		out = res.Ciphertext
	case "esdk-decrypt":
		res, err := c.Decrypt(ctx, esdktypes.DecryptInput{Ciphertext: in, Keyring: kr})
		if err != nil {
			return err
		}
		out = res.Plaintext
	default:
		return fmt.Errorf("unknown operation %q", args[0])
	}
	el := time.Since(start).Seconds()
	if err := os.WriteFile(args[3], out, 0o600); err != nil {
		return err
	}
	fmt.Println(el)
	return nil
}
