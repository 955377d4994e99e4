package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"
)

// TestE2EOperations drives every operation of kmsd, and its errors, through
// the official AWS SDK for Go v2 against one real kmsd (run() on
// 127.0.0.1:0, SoftHSM2 token, SQLite database). Subtests share the server
// and run in order; each one makes the keys whose state it changes.
func TestE2EOperations(t *testing.T) {
	st := newE2EState(t)
	s := st.start(t)
	c := s.client

	// keyA and keyB are the plain Enabled keys most subtests use.
	keyA := s.createKey(t, &awskms.CreateKeyInput{Description: aws.String("e2e key A")})
	keyB := s.createKey(t, &awskms.CreateKeyInput{Description: aws.String("e2e key B")})
	const aliasA = "alias/e2e-key-a"
	if _, err := c.CreateAlias(t.Context(), &awskms.CreateAliasInput{AliasName: aws.String(aliasA), TargetKeyId: keyA.KeyId}); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	const aliasB = "alias/e2e-key-b"
	if _, err := c.CreateAlias(t.Context(), &awskms.CreateAliasInput{AliasName: aws.String(aliasB), TargetKeyId: keyB.KeyId}); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	idA, idB := aws.ToString(keyA.KeyId), aws.ToString(keyB.KeyId)
	// formsA are the four ways of naming key A.
	formsA := map[string]string{
		"key id":     idA,
		"key ARN":    s.keyARN(idA),
		"alias name": aliasA,
		"alias ARN":  s.aliasARN(aliasA),
	}
	unknownID := uuid.NewString()
	unknownKeyMsg := "Key '" + s.keyARN(unknownID) + "' does not exist"

	t.Run("CreateKey", func(t *testing.T) {
		before := time.Now()
		out, err := c.CreateKey(t.Context(), &awskms.CreateKeyInput{})
		after := time.Now()
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		md := out.KeyMetadata
		s.checkKeyMetadata(t, md, aws.ToString(md.KeyId), "", types.KeyStateEnabled)
		if md.CreationDate != nil && (md.CreationDate.Before(before.Add(-5*time.Millisecond)) || md.CreationDate.After(after)) {
			t.Errorf("CreationDate %v not between %v and %v", md.CreationDate, before, after)
		}
		if requestIDOf(out.ResultMetadata) == "" {
			t.Error("SDK surfaced no RequestID for CreateKey")
		}

		// Explicit defaults, description and tags.
		out, err = c.CreateKey(t.Context(), &awskms.CreateKeyInput{
			Description: aws.String("with tags"),
			KeySpec:     types.KeySpecSymmetricDefault,
			KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
			Origin:      types.OriginTypeAwsKms,
			Tags:        []types.Tag{{TagKey: aws.String("b"), TagValue: aws.String("2")}, {TagKey: aws.String("a"), TagValue: aws.String("1")}},
		})
		if err != nil {
			t.Fatalf("CreateKey with tags: %v", err)
		}
		s.checkKeyMetadata(t, out.KeyMetadata, aws.ToString(out.KeyMetadata.KeyId), "with tags", types.KeyStateEnabled)
		tags, err := c.ListResourceTags(t.Context(), &awskms.ListResourceTagsInput{KeyId: out.KeyMetadata.KeyId})
		if err != nil {
			t.Fatalf("ListResourceTags: %v", err)
		}
		if got := tagList(tags.Tags); got != "a=1,b=2" {
			t.Errorf("tags of the new key: %s, want a=1,b=2", got)
		}

		_, err = c.CreateKey(t.Context(), &awskms.CreateKeyInput{KeySpec: types.KeySpecRsa2048})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException",
			"You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.")
		_, err = c.CreateKey(t.Context(), &awskms.CreateKeyInput{Tags: []types.Tag{{TagKey: aws.String("aws:x"), TagValue: aws.String("v")}}})
		expectErr[*types.TagException](t, err, "TagException", "Tags beginning with aws: are reserved")
		_, err = c.CreateKey(t.Context(), &awskms.CreateKeyInput{Description: aws.String(strings.Repeat("d", 8193))})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException", anyMessage)
	})

	t.Run("DescribeKey", func(t *testing.T) {
		s.checkKeyMetadata(t, keyA, idA, "e2e key A", types.KeyStateEnabled)
		for form, id := range formsA {
			out, err := c.DescribeKey(t.Context(), &awskms.DescribeKeyInput{KeyId: aws.String(id)})
			if err != nil {
				t.Errorf("DescribeKey by %s: %v", form, err)
				continue
			}
			if got, want := jsonOf(t, out.KeyMetadata), jsonOf(t, keyA); got != want {
				t.Errorf("DescribeKey by %s:\n got %s\nwant %s (CreateKey)", form, got, want)
			}
		}
		for _, tc := range []struct{ name, keyID, msg string }{
			{"unknown key id", unknownID, unknownKeyMsg},
			{"unknown key ARN", s.keyARN(unknownID), unknownKeyMsg},
			{"unknown alias", "alias/e2e-nope", "Alias " + s.aliasARN("alias/e2e-nope") + " is not found."},
			{"unknown alias ARN", s.aliasARN("alias/e2e-nope"), "Alias " + s.aliasARN("alias/e2e-nope") + " is not found."},
			{"key ARN in another region", strings.Replace(s.keyARN(idA), e2eRegion, "us-west-2", 1), "Invalid arn us-west-2"},
			{"alias ARN in another region", strings.Replace(s.aliasARN(aliasA), e2eRegion, "eu-west-1", 1), "Invalid arn eu-west-1"},
			{"malformed key id", "not-a-key", "Invalid keyId 'not-a-key'"},
		} {
			_, err := c.DescribeKey(t.Context(), &awskms.DescribeKeyInput{KeyId: aws.String(tc.keyID)})
			t.Run(tc.name, func(t *testing.T) { expectErr[*types.NotFoundException](t, err, "NotFoundException", tc.msg) })
		}
		// Another region's ARN is refused by the crypto operations too.
		_, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(strings.Replace(s.keyARN(idA), e2eRegion, "us-west-2", 1)), Plaintext: []byte("x")})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", "Invalid arn us-west-2")
	})

	t.Run("ListKeys", func(t *testing.T) {
		created := map[string]bool{idA: true, idB: true}
		for range 5 {
			created[aws.ToString(s.createKey(t, &awskms.CreateKeyInput{}).KeyId)] = true
		}
		all, err := c.ListKeys(t.Context(), &awskms.ListKeysInput{})
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		if all.Truncated || all.NextMarker != nil {
			t.Errorf("one page of %d keys: Truncated %v, NextMarker %v", len(all.Keys), all.Truncated, all.NextMarker)
		}
		want := keyIDs(t, s, all.Keys)
		for id := range created {
			if !slices.Contains(want, id) {
				t.Errorf("ListKeys lacks key %s", id)
			}
		}
		if len(sortedCopy(want)) != len(slices.Compact(sortedCopy(want))) {
			t.Errorf("ListKeys repeats keys: %v", want)
		}

		// By hand, two at a time.
		var got []string
		var marker *string
		for page := 0; ; page++ {
			if page > len(want) {
				t.Fatal("ListKeys pagination does not end")
			}
			out, err := c.ListKeys(t.Context(), &awskms.ListKeysInput{Limit: aws.Int32(2), Marker: marker})
			if err != nil {
				t.Fatalf("ListKeys page %d: %v", page, err)
			}
			got = append(got, keyIDs(t, s, out.Keys)...)
			if !out.Truncated {
				if out.NextMarker != nil {
					t.Errorf("page %d: NextMarker %q on the last page", page, *out.NextMarker)
				}
				break
			}
			if len(out.Keys) != 2 {
				t.Errorf("truncated page %d has %d keys, want 2", page, len(out.Keys))
			}
			if aws.ToString(out.NextMarker) == "" {
				t.Fatalf("page %d: Truncated without NextMarker", page)
			}
			marker = out.NextMarker
		}
		if !slices.Equal(got, want) {
			t.Errorf("ListKeys by 2:\n got %v\nwant %v", got, want)
		}

		// With the SDK's paginator.
		got = nil
		pages := 0
		p := awskms.NewListKeysPaginator(c, &awskms.ListKeysInput{Limit: aws.Int32(3)})
		for p.HasMorePages() {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatalf("paginator: %v", err)
			}
			pages++
			if len(out.Keys) == 0 || len(out.Keys) > 3 {
				t.Errorf("paginator page %d has %d keys", pages, len(out.Keys))
			}
			if out.Truncated != (out.NextMarker != nil) {
				t.Errorf("paginator page %d: Truncated %v, NextMarker %v", pages, out.Truncated, out.NextMarker)
			}
			got = append(got, keyIDs(t, s, out.Keys)...)
		}
		if !slices.Equal(got, want) {
			t.Errorf("ListKeys paginator:\n got %v\nwant %v", got, want)
		}
		if wantPages := (len(want) + 2) / 3; pages != wantPages {
			t.Errorf("paginator made %d pages, want %d", pages, wantPages)
		}

		if _, err := c.ListKeys(t.Context(), &awskms.ListKeysInput{Limit: aws.Int32(1000)}); err != nil {
			t.Errorf("ListKeys Limit 1000: %v", err)
		}
		_, err = c.ListKeys(t.Context(), &awskms.ListKeysInput{Limit: aws.Int32(0)})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException",
			validationMsg("Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"))
		_, err = c.ListKeys(t.Context(), &awskms.ListKeysInput{Limit: aws.Int32(1001)})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException",
			validationMsg("Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000"))
		_, err = c.ListKeys(t.Context(), &awskms.ListKeysInput{Marker: aws.String("not-a-marker")})
		expectErr[*types.InvalidMarkerException](t, err, "InvalidMarkerException", anyMessage)
	})

	t.Run("UpdateKeyDescription", func(t *testing.T) {
		k := s.createKey(t, &awskms.CreateKeyInput{Description: aws.String("before")})
		for _, d := range []string{"after", "", strings.Repeat("x", 8192)} {
			if _, err := c.UpdateKeyDescription(t.Context(), &awskms.UpdateKeyDescriptionInput{KeyId: k.KeyId, Description: aws.String(d)}); err != nil {
				t.Fatalf("UpdateKeyDescription(%.10q): %v", d, err)
			}
			s.checkKeyMetadata(t, s.describe(t, aws.ToString(k.KeyId)), aws.ToString(k.KeyId), d, types.KeyStateEnabled)
		}
		// By key ARN too.
		if _, err := c.UpdateKeyDescription(t.Context(), &awskms.UpdateKeyDescriptionInput{KeyId: aws.String(s.keyARN(aws.ToString(k.KeyId))), Description: aws.String("by arn")}); err != nil {
			t.Fatalf("UpdateKeyDescription by ARN: %v", err)
		}
		if got := aws.ToString(s.describe(t, aws.ToString(k.KeyId)).Description); got != "by arn" {
			t.Errorf("Description %q, want %q", got, "by arn")
		}
		_, err := c.UpdateKeyDescription(t.Context(), &awskms.UpdateKeyDescriptionInput{KeyId: k.KeyId, Description: aws.String(strings.Repeat("x", 8193))})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException", anyMessage)
		_, err = c.UpdateKeyDescription(t.Context(), &awskms.UpdateKeyDescriptionInput{KeyId: aws.String(unknownID), Description: aws.String("x")})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)
	})

	t.Run("EncryptDecrypt", func(t *testing.T) {
		plaintext := []byte("e2e plaintext \x00\x01\x02 bytes")
		var blobs [][]byte
		for form, id := range formsA {
			out, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(id), Plaintext: plaintext})
			if err != nil {
				t.Fatalf("Encrypt by %s: %v", form, err)
			}
			if got := aws.ToString(out.KeyId); got != s.keyARN(idA) {
				t.Errorf("Encrypt by %s: KeyId %q, want the key ARN %q", form, got, s.keyARN(idA))
			}
			if out.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
				t.Errorf("Encrypt by %s: EncryptionAlgorithm %q", form, out.EncryptionAlgorithm)
			}
			if len(out.CiphertextBlob) <= len(plaintext) || len(out.CiphertextBlob) > 6144 {
				t.Errorf("Encrypt by %s: CiphertextBlob of %d bytes", form, len(out.CiphertextBlob))
			}
			blobs = append(blobs, out.CiphertextBlob)
		}
		if bytes.Equal(blobs[0], blobs[1]) {
			t.Error("two encryptions of one plaintext gave the same ciphertext")
		}
		// Decrypt without KeyId, then with KeyId in each form.
		for i, blob := range blobs {
			out, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: blob})
			if err != nil {
				t.Fatalf("Decrypt %d without KeyId: %v", i, err)
			}
			s.checkDecrypt(t, out, plaintext, keyA)
		}
		for form, id := range formsA {
			out, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: blobs[0], KeyId: aws.String(id)})
			if err != nil {
				t.Errorf("Decrypt with KeyId as %s: %v", form, err)
				continue
			}
			s.checkDecrypt(t, out, plaintext, keyA)
		}

		// Sizes: 1 and 4096 bytes pass, 4097 does not.
		for _, n := range []int{1, 4096} {
			pt := bytes.Repeat([]byte{0xa5}, n)
			enc, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(idA), Plaintext: pt})
			if err != nil {
				t.Fatalf("Encrypt %d bytes: %v", n, err)
			}
			dec, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
			if err != nil || !bytes.Equal(dec.Plaintext, pt) {
				t.Errorf("round trip of %d bytes: %v", n, err)
			}
		}
		_, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(idA), Plaintext: make([]byte, 4097)})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException",
			validationMsg("Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"))

		_, err = c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(idA), Plaintext: []byte{}})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException",
			validationMsg("Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1"))
		_, err = c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: make([]byte, 6145)})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException",
			validationMsg("Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length less than or equal to 6144"))
		_, err = c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(idA), Plaintext: plaintext, DryRun: aws.Bool(true)})
		expectErr[*types.DryRunOperationException](t, err, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
		_, err = c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(idA), Plaintext: plaintext, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
		expectErr[*types.InvalidKeyUsageException](t, err, "InvalidKeyUsageException", "Algorithm RSAES_OAEP_SHA_256 is incompatible with key spec SYMMETRIC_DEFAULT.")

		// Encryption context is bound: exactly the same pairs, any order.
		ctx := map[string]string{"purpose": "e2e", "tenant": "t1", "ünï": "cødé"}
		enc, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(aliasA), Plaintext: plaintext, EncryptionContext: ctx})
		if err != nil {
			t.Fatalf("Encrypt with context: %v", err)
		}
		dec, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob,
			EncryptionContext: map[string]string{"ünï": "cødé", "tenant": "t1", "purpose": "e2e"}})
		if err != nil {
			t.Fatalf("Decrypt with context: %v", err)
		}
		s.checkDecrypt(t, dec, plaintext, keyA)
		for name, wrong := range map[string]map[string]string{
			"no context":    nil,
			"other value":   {"purpose": "e2e", "tenant": "t2", "ünï": "cødé"},
			"missing pair":  {"purpose": "e2e", "tenant": "t1"},
			"extra pair":    {"purpose": "e2e", "tenant": "t1", "ünï": "cødé", "x": "y"},
			"key case":      {"Purpose": "e2e", "tenant": "t1", "ünï": "cødé"},
			"swapped pairs": {"e2e": "purpose", "tenant": "t1", "ünï": "cødé"},
		} {
			_, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: wrong})
			t.Run("wrong context/"+name, func(t *testing.T) {
				expectErr[*types.InvalidCiphertextException](t, err, "InvalidCiphertextException", noMessage)
			})
		}
		// A context on a blob made without one.
		_, err = c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: blobs[0], EncryptionContext: map[string]string{"a": "b"}})
		expectErr[*types.InvalidCiphertextException](t, err, "InvalidCiphertextException", noMessage)

		// Tampered and malformed blobs.
		for name, blob := range map[string][]byte{
			"last byte flipped": flipLastByte(blobs[0]),
			"truncated":         blobs[0][:len(blobs[0])-1],
			"tag cut off":       blobs[0][:len(blobs[0])-16],
			"not a ciphertext":  []byte("this is not a kmsd ciphertext blob"),
			"one byte":          {0x01},
		} {
			_, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: blob})
			t.Run("tampered/"+name, func(t *testing.T) {
				expectErr[*types.InvalidCiphertextException](t, err, "InvalidCiphertextException", noMessage)
			})
		}

		// Another key named in the request.
		const incorrect = "The key ID in the request does not identify a CMK that can perform this operation."
		for _, id := range []string{idB, s.keyARN(idB), aliasB, s.aliasARN(aliasB)} {
			_, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: blobs[0], KeyId: aws.String(id)})
			t.Run("IncorrectKey/"+id, func(t *testing.T) {
				expectErr[*types.IncorrectKeyException](t, err, "IncorrectKeyException", incorrect)
			})
		}
		_, err = c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: blobs[0], KeyId: aws.String(unknownID)})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)
		_, err = c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String("alias/e2e-nope"), Plaintext: plaintext})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", "Alias "+s.aliasARN("alias/e2e-nope")+" is not found.")
	})

	t.Run("ReEncrypt", func(t *testing.T) {
		plaintext := []byte("re-encrypt me")
		srcCtx := map[string]string{"from": "a"}
		dstCtx := map[string]string{"to": "b"}
		enc, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(idA), Plaintext: plaintext, EncryptionContext: srcCtx})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, src, dst string }{
			{"no source key, dest by alias", "", aliasB},
			{"source by key id, dest by key ARN", idA, s.keyARN(idB)},
			{"source by alias ARN, dest by alias ARN", s.aliasARN(aliasA), s.aliasARN(aliasB)},
		} {
			in := &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: srcCtx,
				DestinationKeyId: aws.String(tc.dst), DestinationEncryptionContext: dstCtx}
			if tc.src != "" {
				in.SourceKeyId = aws.String(tc.src)
			}
			out, err := c.ReEncrypt(t.Context(), in)
			if err != nil {
				t.Fatalf("ReEncrypt %s: %v", tc.name, err)
			}
			if aws.ToString(out.SourceKeyId) != s.keyARN(idA) || aws.ToString(out.KeyId) != s.keyARN(idB) {
				t.Errorf("ReEncrypt %s: SourceKeyId %q KeyId %q, want the ARNs of A and B", tc.name, aws.ToString(out.SourceKeyId), aws.ToString(out.KeyId))
			}
			if out.SourceEncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault ||
				out.DestinationEncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
				t.Errorf("ReEncrypt %s: algorithms %q -> %q", tc.name, out.SourceEncryptionAlgorithm, out.DestinationEncryptionAlgorithm)
			}
			if aws.ToString(out.SourceKeyMaterialId) != aws.ToString(keyA.CurrentKeyMaterialId) ||
				aws.ToString(out.DestinationKeyMaterialId) != aws.ToString(keyB.CurrentKeyMaterialId) {
				t.Errorf("ReEncrypt %s: key material ids %q -> %q, want %q -> %q", tc.name,
					aws.ToString(out.SourceKeyMaterialId), aws.ToString(out.DestinationKeyMaterialId),
					aws.ToString(keyA.CurrentKeyMaterialId), aws.ToString(keyB.CurrentKeyMaterialId))
			}
			dec, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: dstCtx})
			if err != nil {
				t.Fatalf("Decrypt of the re-encrypted blob: %v", err)
			}
			s.checkDecrypt(t, dec, plaintext, keyB)
			_, err = c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: dstCtx, KeyId: aws.String(idA)})
			expectErr[*types.IncorrectKeyException](t, err, "IncorrectKeyException", anyMessage)
		}
		// Same key, new context.
		out, err := c.ReEncrypt(t.Context(), &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: srcCtx,
			DestinationKeyId: aws.String(idA)})
		if err != nil {
			t.Fatalf("ReEncrypt to the same key: %v", err)
		}
		if aws.ToString(out.KeyId) != s.keyARN(idA) {
			t.Errorf("ReEncrypt to the same key: KeyId %q", aws.ToString(out.KeyId))
		}
		dec, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
		if err != nil {
			t.Fatalf("Decrypt after ReEncrypt without context: %v", err)
		}
		s.checkDecrypt(t, dec, plaintext, keyA)

		_, err = c.ReEncrypt(t.Context(), &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: aws.String(idB)})
		expectErr[*types.InvalidCiphertextException](t, err, "InvalidCiphertextException", noMessage)
		_, err = c.ReEncrypt(t.Context(), &awskms.ReEncryptInput{CiphertextBlob: flipLastByte(enc.CiphertextBlob), SourceEncryptionContext: srcCtx, DestinationKeyId: aws.String(idB)})
		expectErr[*types.InvalidCiphertextException](t, err, "InvalidCiphertextException", noMessage)
		_, err = c.ReEncrypt(t.Context(), &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: srcCtx,
			SourceKeyId: aws.String(idB), DestinationKeyId: aws.String(idB)})
		expectErr[*types.IncorrectKeyException](t, err, "IncorrectKeyException",
			"The key ID in the request does not identify a CMK that can perform this operation.")
		_, err = c.ReEncrypt(t.Context(), &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: srcCtx,
			DestinationKeyId: aws.String(unknownID)})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)
	})

	t.Run("GenerateDataKey", func(t *testing.T) {
		ctx := map[string]string{"dk": "1"}
		var first []byte
		for _, tc := range []struct {
			name string
			spec types.DataKeySpec
			n    *int32
			want int
		}{
			{"AES_128", types.DataKeySpecAes128, nil, 16},
			{"AES_256", types.DataKeySpecAes256, nil, 32},
			{"1 byte", "", aws.Int32(1), 1},
			{"64 bytes", "", aws.Int32(64), 64},
			{"1024 bytes", "", aws.Int32(1024), 1024},
		} {
			out, err := c.GenerateDataKey(t.Context(), &awskms.GenerateDataKeyInput{KeyId: aws.String(aliasA), KeySpec: tc.spec, NumberOfBytes: tc.n, EncryptionContext: ctx})
			if err != nil {
				t.Fatalf("GenerateDataKey %s: %v", tc.name, err)
			}
			if len(out.Plaintext) != tc.want {
				t.Errorf("GenerateDataKey %s: %d bytes of plaintext, want %d", tc.name, len(out.Plaintext), tc.want)
			}
			if aws.ToString(out.KeyId) != s.keyARN(idA) {
				t.Errorf("GenerateDataKey %s: KeyId %q, want %q", tc.name, aws.ToString(out.KeyId), s.keyARN(idA))
			}
			if aws.ToString(out.KeyMaterialId) != aws.ToString(keyA.CurrentKeyMaterialId) {
				t.Errorf("GenerateDataKey %s: KeyMaterialId %q, want %q", tc.name, aws.ToString(out.KeyMaterialId), aws.ToString(keyA.CurrentKeyMaterialId))
			}
			if out.CiphertextForRecipient != nil {
				t.Errorf("GenerateDataKey %s: CiphertextForRecipient without a Recipient", tc.name)
			}
			dec, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ctx})
			if err != nil {
				t.Fatalf("Decrypt of the data key: %v", err)
			}
			s.checkDecrypt(t, dec, out.Plaintext, keyA)
			if tc.want == 32 {
				first = out.Plaintext
			}
		}
		again, err := c.GenerateDataKey(t.Context(), &awskms.GenerateDataKeyInput{KeyId: aws.String(idA), KeySpec: types.DataKeySpecAes256})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(again.Plaintext, first) {
			t.Error("two GenerateDataKey calls returned the same data key")
		}
		s.checkDataKeyErrors(t, func(in *awskms.GenerateDataKeyInput) error {
			_, err := c.GenerateDataKey(t.Context(), in)
			return err
		}, idA)
		_, err = c.GenerateDataKey(t.Context(), &awskms.GenerateDataKeyInput{KeyId: aws.String(unknownID), KeySpec: types.DataKeySpecAes256})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)
	})

	t.Run("GenerateDataKeyWithoutPlaintext", func(t *testing.T) {
		for _, tc := range []struct {
			spec types.DataKeySpec
			n    *int32
			want int
		}{
			{types.DataKeySpecAes128, nil, 16},
			{types.DataKeySpecAes256, nil, 32},
			{"", aws.Int32(100), 100},
		} {
			out, err := c.GenerateDataKeyWithoutPlaintext(t.Context(), &awskms.GenerateDataKeyWithoutPlaintextInput{
				KeyId: aws.String(s.aliasARN(aliasB)), KeySpec: tc.spec, NumberOfBytes: tc.n})
			if err != nil {
				t.Fatalf("GenerateDataKeyWithoutPlaintext %d: %v", tc.want, err)
			}
			if aws.ToString(out.KeyId) != s.keyARN(idB) {
				t.Errorf("KeyId %q, want %q", aws.ToString(out.KeyId), s.keyARN(idB))
			}
			if aws.ToString(out.KeyMaterialId) != aws.ToString(keyB.CurrentKeyMaterialId) {
				t.Errorf("KeyMaterialId %q, want %q", aws.ToString(out.KeyMaterialId), aws.ToString(keyB.CurrentKeyMaterialId))
			}
			dec, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if len(dec.Plaintext) != tc.want {
				t.Errorf("data key of %d bytes, want %d", len(dec.Plaintext), tc.want)
			}
		}
		s.checkDataKeyErrors(t, func(in *awskms.GenerateDataKeyInput) error {
			_, err := c.GenerateDataKeyWithoutPlaintext(t.Context(), &awskms.GenerateDataKeyWithoutPlaintextInput{
				KeyId: in.KeyId, KeySpec: in.KeySpec, NumberOfBytes: in.NumberOfBytes})
			return err
		}, idB)
	})

	t.Run("GenerateRandom", func(t *testing.T) {
		var prev []byte
		for _, n := range []int32{1, 32, 32, 1024} {
			out, err := c.GenerateRandom(t.Context(), &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(n)})
			if err != nil {
				t.Fatalf("GenerateRandom %d: %v", n, err)
			}
			if len(out.Plaintext) != int(n) {
				t.Errorf("GenerateRandom %d: %d bytes", n, len(out.Plaintext))
			}
			if out.CiphertextForRecipient != nil {
				t.Error("CiphertextForRecipient without a Recipient")
			}
			if n == 32 && bytes.Equal(out.Plaintext, prev) {
				t.Error("two GenerateRandom calls gave the same 32 bytes")
			}
			prev = out.Plaintext
		}
		_, err := c.GenerateRandom(t.Context(), &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(0)})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException",
			validationMsg("Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"))
		_, err = c.GenerateRandom(t.Context(), &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(1025)})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException",
			validationMsg("Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"))
		_, err = c.GenerateRandom(t.Context(), &awskms.GenerateRandomInput{})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException", "NumberOfBytes is required.")
	})

	t.Run("EnableDisableKey", func(t *testing.T) {
		k := s.createKey(t, &awskms.CreateKeyInput{Description: aws.String("toggle")})
		id := aws.ToString(k.KeyId)
		alias := "alias/e2e-toggle"
		if _, err := c.CreateAlias(t.Context(), &awskms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: k.KeyId}); err != nil {
			t.Fatal(err)
		}
		enc, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("toggle")})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // disabling a disabled key is not an error
			if _, err := c.DisableKey(t.Context(), &awskms.DisableKeyInput{KeyId: k.KeyId}); err != nil {
				t.Fatalf("DisableKey: %v", err)
			}
		}
		s.checkKeyMetadata(t, s.describe(t, id), id, "toggle", types.KeyStateDisabled)
		disabled := s.keyARN(id) + " is disabled."
		_, err = c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("x")})
		expectErr[*types.DisabledException](t, err, "DisabledException", disabled)
		_, err = c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(alias), Plaintext: []byte("x")})
		expectErr[*types.DisabledException](t, err, "DisabledException", disabled)
		_, err = c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		expectErr[*types.DisabledException](t, err, "DisabledException", disabled)
		_, err = c.GenerateDataKey(t.Context(), &awskms.GenerateDataKeyInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256})
		expectErr[*types.DisabledException](t, err, "DisabledException", disabled)
		_, err = c.GenerateDataKeyWithoutPlaintext(t.Context(), &awskms.GenerateDataKeyWithoutPlaintextInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256})
		expectErr[*types.DisabledException](t, err, "DisabledException", disabled)
		_, err = c.ReEncrypt(t.Context(), &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: aws.String(idA)})
		expectErr[*types.DisabledException](t, err, "DisabledException", disabled)
		// Management operations still work on a disabled key.
		if _, err := c.UpdateKeyDescription(t.Context(), &awskms.UpdateKeyDescriptionInput{KeyId: k.KeyId, Description: aws.String("toggled")}); err != nil {
			t.Errorf("UpdateKeyDescription of a disabled key: %v", err)
		}
		if _, err := c.TagResource(t.Context(), &awskms.TagResourceInput{KeyId: k.KeyId, Tags: []types.Tag{{TagKey: aws.String("k"), TagValue: aws.String("v")}}}); err != nil {
			t.Errorf("TagResource of a disabled key: %v", err)
		}

		for range 2 { // enabling an enabled key is not an error
			if _, err := c.EnableKey(t.Context(), &awskms.EnableKeyInput{KeyId: aws.String(s.keyARN(id))}); err != nil {
				t.Fatalf("EnableKey: %v", err)
			}
		}
		s.checkKeyMetadata(t, s.describe(t, id), id, "toggled", types.KeyStateEnabled)
		dec, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		if err != nil {
			t.Fatalf("Decrypt after EnableKey: %v", err)
		}
		s.checkDecrypt(t, dec, []byte("toggle"), k)

		_, err = c.EnableKey(t.Context(), &awskms.EnableKeyInput{KeyId: aws.String(unknownID)})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)
		_, err = c.DisableKey(t.Context(), &awskms.DisableKeyInput{KeyId: aws.String(unknownID)})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)
	})

	t.Run("ScheduleCancelKeyDeletion", func(t *testing.T) {
		k := s.createKey(t, &awskms.CreateKeyInput{Description: aws.String("doomed")})
		id := aws.ToString(k.KeyId)
		arn := s.keyARN(id)
		alias := "alias/e2e-doomed"
		if _, err := c.CreateAlias(t.Context(), &awskms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: k.KeyId}); err != nil {
			t.Fatal(err)
		}
		enc, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("doomed")})
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.ScheduleKeyDeletion(t.Context(), &awskms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)})
		if err != nil {
			t.Fatalf("ScheduleKeyDeletion: %v", err)
		}
		checkScheduled(t, out, arn, 7)
		md := s.describe(t, id)
		s.checkKeyMetadata(t, md, id, "doomed", types.KeyStatePendingDeletion)
		if md.DeletionDate == nil || out.DeletionDate == nil || !md.DeletionDate.Equal(*out.DeletionDate) {
			t.Errorf("DescribeKey DeletionDate %v, ScheduleKeyDeletion said %v", md.DeletionDate, out.DeletionDate)
		}

		pending := arn + " is pending deletion."
		_, err = c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("x")})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		_, err = c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(alias), Plaintext: []byte("x")})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		_, err = c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		_, err = c.GenerateDataKey(t.Context(), &awskms.GenerateDataKeyInput{KeyId: k.KeyId, NumberOfBytes: aws.Int32(8)})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		_, err = c.GenerateDataKeyWithoutPlaintext(t.Context(), &awskms.GenerateDataKeyWithoutPlaintextInput{KeyId: k.KeyId, NumberOfBytes: aws.Int32(8)})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		_, err = c.ReEncrypt(t.Context(), &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: aws.String(idA)})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		_, err = c.ScheduleKeyDeletion(t.Context(), &awskms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		_, err = c.EnableKey(t.Context(), &awskms.EnableKeyInput{KeyId: k.KeyId})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		_, err = c.DisableKey(t.Context(), &awskms.DisableKeyInput{KeyId: k.KeyId})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		_, err = c.UpdateKeyDescription(t.Context(), &awskms.UpdateKeyDescriptionInput{KeyId: k.KeyId, Description: aws.String("x")})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		_, err = c.TagResource(t.Context(), &awskms.TagResourceInput{KeyId: k.KeyId, Tags: []types.Tag{{TagKey: aws.String("k"), TagValue: aws.String("v")}}})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		_, err = c.UntagResource(t.Context(), &awskms.UntagResourceInput{KeyId: k.KeyId, TagKeys: []string{"k"}})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		_, err = c.CreateAlias(t.Context(), &awskms.CreateAliasInput{AliasName: aws.String("alias/e2e-doomed-2"), TargetKeyId: k.KeyId})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", pending)
		// Still listed and readable.
		keys, err := c.ListKeys(t.Context(), &awskms.ListKeysInput{Limit: aws.Int32(1000)})
		if err != nil || !slices.Contains(keyIDs(t, s, keys.Keys), id) {
			t.Errorf("ListKeys does not list the key pending deletion (err %v)", err)
		}
		if _, err := c.ListResourceTags(t.Context(), &awskms.ListResourceTagsInput{KeyId: k.KeyId}); err != nil {
			t.Errorf("ListResourceTags of a key pending deletion: %v", err)
		}

		cancel, err := c.CancelKeyDeletion(t.Context(), &awskms.CancelKeyDeletionInput{KeyId: k.KeyId})
		if err != nil {
			t.Fatalf("CancelKeyDeletion: %v", err)
		}
		if aws.ToString(cancel.KeyId) != arn {
			t.Errorf("CancelKeyDeletion KeyId %q, want %q", aws.ToString(cancel.KeyId), arn)
		}
		s.checkKeyMetadata(t, s.describe(t, id), id, "doomed", types.KeyStateDisabled)
		_, err = c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("x")})
		expectErr[*types.DisabledException](t, err, "DisabledException", arn+" is disabled.")
		_, err = c.CancelKeyDeletion(t.Context(), &awskms.CancelKeyDeletionInput{KeyId: k.KeyId})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", arn+" is not pending deletion.")
		_, err = c.CancelKeyDeletion(t.Context(), &awskms.CancelKeyDeletionInput{KeyId: aws.String(idA)})
		expectErr[*types.KMSInvalidStateException](t, err, "KMSInvalidStateException", s.keyARN(idA)+" is not pending deletion.")
		if _, err := c.EnableKey(t.Context(), &awskms.EnableKeyInput{KeyId: k.KeyId}); err != nil {
			t.Fatalf("EnableKey after cancel: %v", err)
		}
		dec, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		if err != nil {
			t.Fatalf("Decrypt after cancel: %v", err)
		}
		s.checkDecrypt(t, dec, []byte("doomed"), k)

		// Default window (30 days), by key ARN; from Disabled too.
		if _, err := c.DisableKey(t.Context(), &awskms.DisableKeyInput{KeyId: k.KeyId}); err != nil {
			t.Fatal(err)
		}
		out, err = c.ScheduleKeyDeletion(t.Context(), &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(arn)})
		if err != nil {
			t.Fatalf("ScheduleKeyDeletion with the default window: %v", err)
		}
		checkScheduled(t, out, arn, 30)
		if _, err := c.CancelKeyDeletion(t.Context(), &awskms.CancelKeyDeletionInput{KeyId: aws.String(arn)}); err != nil {
			t.Fatalf("CancelKeyDeletion by ARN: %v", err)
		}

		for _, days := range []int32{0, 6, 31, 365} {
			_, err = c.ScheduleKeyDeletion(t.Context(), &awskms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(days)})
			t.Run(fmt.Sprintf("window %d", days), func(t *testing.T) {
				expectErr[*smithy.GenericAPIError](t, err, "ValidationException", anyMessage)
			})
		}
		_, err = c.ScheduleKeyDeletion(t.Context(), &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(unknownID), PendingWindowInDays: aws.Int32(7)})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)
		_, err = c.CancelKeyDeletion(t.Context(), &awskms.CancelKeyDeletionInput{KeyId: aws.String(unknownID)})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)
	})

	t.Run("Aliases", func(t *testing.T) {
		const name = "alias/e2e-one"
		before := time.Now()
		if _, err := c.CreateAlias(t.Context(), &awskms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: keyA.KeyId}); err != nil {
			t.Fatalf("CreateAlias: %v", err)
		}
		e := s.findAlias(t, name, "")
		if e == nil {
			t.Fatalf("ListAliases does not list %s", name)
		}
		if aws.ToString(e.AliasArn) != s.aliasARN(name) || aws.ToString(e.TargetKeyId) != idA {
			t.Errorf("alias entry: AliasArn %q TargetKeyId %q, want %q and the bare key id %q",
				aws.ToString(e.AliasArn), aws.ToString(e.TargetKeyId), s.aliasARN(name), idA)
		}
		if e.CreationDate == nil || e.LastUpdatedDate == nil || !within(*e.CreationDate, before, time.Minute) {
			t.Errorf("alias dates: CreationDate %v LastUpdatedDate %v", e.CreationDate, e.LastUpdatedDate)
		}
		_, err := c.CreateAlias(t.Context(), &awskms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: keyB.KeyId})
		expectErr[*types.AlreadyExistsException](t, err, "AlreadyExistsException",
			"An alias with the name "+s.aliasARN(name)+" already exists")
		_, err = c.CreateAlias(t.Context(), &awskms.CreateAliasInput{AliasName: aws.String("alias/e2e-unknown-target"), TargetKeyId: aws.String(unknownID)})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)
		_, err = c.CreateAlias(t.Context(), &awskms.CreateAliasInput{AliasName: aws.String("e2e-no-prefix"), TargetKeyId: keyA.KeyId})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException", anyMessage)
		_, err = c.CreateAlias(t.Context(), &awskms.CreateAliasInput{AliasName: aws.String("alias/aws/e2e"), TargetKeyId: keyA.KeyId})
		expectErr[*types.InvalidAliasNameException](t, err, "InvalidAliasNameException", anyMessage)

		// UpdateAlias moves it to key B: crypto through the alias follows.
		time.Sleep(5 * time.Millisecond) // so LastUpdatedDate can move
		if _, err := c.UpdateAlias(t.Context(), &awskms.UpdateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(s.keyARN(idB))}); err != nil {
			t.Fatalf("UpdateAlias: %v", err)
		}
		enc, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(name), Plaintext: []byte("via alias")})
		if err != nil {
			t.Fatalf("Encrypt via the moved alias: %v", err)
		}
		if aws.ToString(enc.KeyId) != s.keyARN(idB) {
			t.Errorf("Encrypt via the moved alias: KeyId %q, want %q", aws.ToString(enc.KeyId), s.keyARN(idB))
		}
		e2 := s.findAlias(t, name, idB)
		if e2 == nil || aws.ToString(e2.TargetKeyId) != idB {
			t.Fatalf("ListAliases KeyId=B does not list %s -> B: %+v", name, e2)
		}
		if !e2.CreationDate.Equal(*e.CreationDate) || !e2.LastUpdatedDate.After(*e.LastUpdatedDate) {
			t.Errorf("after UpdateAlias: CreationDate %v -> %v, LastUpdatedDate %v -> %v",
				e.CreationDate, e2.CreationDate, e.LastUpdatedDate, e2.LastUpdatedDate)
		}
		if s.findAlias(t, name, idA) != nil {
			t.Errorf("ListAliases KeyId=A still lists %s", name)
		}
		_, err = c.UpdateAlias(t.Context(), &awskms.UpdateAliasInput{AliasName: aws.String("alias/e2e-nope"), TargetKeyId: keyA.KeyId})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", "Alias "+s.aliasARN("alias/e2e-nope")+" is not found.")
		_, err = c.UpdateAlias(t.Context(), &awskms.UpdateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(unknownID)})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)

		// Pagination.
		for i := range 4 {
			if _, err := c.CreateAlias(t.Context(), &awskms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/e2e-page-%d", i)), TargetKeyId: keyB.KeyId}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := c.ListAliases(t.Context(), &awskms.ListAliasesInput{Limit: aws.Int32(100)})
		if err != nil {
			t.Fatal(err)
		}
		if all.Truncated || all.NextMarker != nil {
			t.Errorf("one page of %d aliases: Truncated %v, NextMarker %v", len(all.Aliases), all.Truncated, all.NextMarker)
		}
		want := aliasNames(all.Aliases)
		var got []string
		p := awskms.NewListAliasesPaginator(c, &awskms.ListAliasesInput{Limit: aws.Int32(2)})
		for p.HasMorePages() {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatalf("ListAliases paginator: %v", err)
			}
			if out.Truncated != (out.NextMarker != nil) || len(out.Aliases) == 0 || len(out.Aliases) > 2 {
				t.Errorf("ListAliases page: %d aliases, Truncated %v, NextMarker %v", len(out.Aliases), out.Truncated, out.NextMarker)
			}
			got = append(got, aliasNames(out.Aliases)...)
		}
		if !slices.Equal(got, want) || len(want) < 7 {
			t.Errorf("ListAliases by 2:\n got %v\nwant %v", got, want)
		}
		byB, err := c.ListAliases(t.Context(), &awskms.ListAliasesInput{KeyId: aws.String(s.keyARN(idB))})
		if err != nil {
			t.Fatal(err)
		}
		wantB := []string{aliasB, name, "alias/e2e-page-0", "alias/e2e-page-1", "alias/e2e-page-2", "alias/e2e-page-3"}
		if got := aliasNames(byB.Aliases); !slices.Equal(sortedCopy(got), wantB) {
			t.Errorf("ListAliases KeyId=B: %v, want %v", got, wantB)
		}
		_, err = c.ListAliases(t.Context(), &awskms.ListAliasesInput{Marker: aws.String("bogus-marker")})
		expectErr[*types.InvalidMarkerException](t, err, "InvalidMarkerException", anyMessage)
		_, err = c.ListAliases(t.Context(), &awskms.ListAliasesInput{KeyId: aws.String(unknownID)})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)

		// DeleteAlias.
		if _, err := c.DeleteAlias(t.Context(), &awskms.DeleteAliasInput{AliasName: aws.String(name)}); err != nil {
			t.Fatalf("DeleteAlias: %v", err)
		}
		if s.findAlias(t, name, "") != nil {
			t.Errorf("ListAliases still lists %s after DeleteAlias", name)
		}
		notFound := "Alias " + s.aliasARN(name) + " is not found."
		_, err = c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(name), Plaintext: []byte("x")})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", notFound)
		_, err = c.DeleteAlias(t.Context(), &awskms.DeleteAliasInput{AliasName: aws.String(name)})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", notFound)
		// The key itself is untouched.
		if _, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil {
			t.Errorf("Decrypt after DeleteAlias: %v", err)
		}
	})

	t.Run("Tags", func(t *testing.T) {
		k := s.createKey(t, &awskms.CreateKeyInput{Description: aws.String("tags")})
		list := func() string {
			t.Helper()
			out, err := c.ListResourceTags(t.Context(), &awskms.ListResourceTagsInput{KeyId: k.KeyId})
			if err != nil {
				t.Fatalf("ListResourceTags: %v", err)
			}
			if out.Truncated || out.NextMarker != nil {
				t.Errorf("one page of tags: Truncated %v, NextMarker %v", out.Truncated, out.NextMarker)
			}
			return tagList(out.Tags)
		}
		if got := list(); got != "" {
			t.Errorf("tags of a new key: %q", got)
		}
		tag := func(kv ...string) []types.Tag {
			var tags []types.Tag
			for i := 0; i < len(kv); i += 2 {
				tags = append(tags, types.Tag{TagKey: aws.String(kv[i]), TagValue: aws.String(kv[i+1])})
			}
			return tags
		}
		if _, err := c.TagResource(t.Context(), &awskms.TagResourceInput{KeyId: k.KeyId, Tags: tag("team", "", "env", "prod")}); err != nil {
			t.Fatalf("TagResource: %v", err)
		}
		if got := list(); got != "env=prod,team=" {
			t.Errorf("tags: %q, want env=prod,team=", got)
		}
		if _, err := c.TagResource(t.Context(), &awskms.TagResourceInput{KeyId: aws.String(s.keyARN(aws.ToString(k.KeyId))), Tags: tag("env", "dev")}); err != nil {
			t.Fatalf("TagResource overwrite: %v", err)
		}
		if got := list(); got != "env=dev,team=" {
			t.Errorf("tags: %q, want env=dev,team=", got)
		}
		if _, err := c.UntagResource(t.Context(), &awskms.UntagResourceInput{KeyId: k.KeyId, TagKeys: []string{"team", "absent"}}); err != nil {
			t.Fatalf("UntagResource: %v", err)
		}
		if got := list(); got != "env=dev" {
			t.Errorf("tags: %q, want env=dev", got)
		}

		// Pagination over 7 tags, 3 at a time.
		if _, err := c.TagResource(t.Context(), &awskms.TagResourceInput{KeyId: k.KeyId, Tags: tag("t1", "1", "t2", "2", "t3", "3", "t4", "4", "t5", "5", "t6", "6")}); err != nil {
			t.Fatal(err)
		}
		var pages []string
		p := awskms.NewListResourceTagsPaginator(c, &awskms.ListResourceTagsInput{KeyId: k.KeyId, Limit: aws.Int32(3)})
		for p.HasMorePages() {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatalf("ListResourceTags paginator: %v", err)
			}
			if out.Truncated != (out.NextMarker != nil) {
				t.Errorf("ListResourceTags page: Truncated %v, NextMarker %v", out.Truncated, out.NextMarker)
			}
			pages = append(pages, tagList(out.Tags))
		}
		if got := strings.Join(pages, " | "); got != "env=dev,t1=1,t2=2 | t3=3,t4=4,t5=5 | t6=6" {
			t.Errorf("ListResourceTags by 3: %s", got)
		}
		_, err := c.ListResourceTags(t.Context(), &awskms.ListResourceTagsInput{KeyId: k.KeyId, Marker: aws.String("bogus")})
		expectErr[*types.InvalidMarkerException](t, err, "InvalidMarkerException", anyMessage)

		// TagException and ValidationException, with AWS's recorded texts.
		for _, tc := range []struct {
			name string
			tags []types.Tag
			msg  string
		}{
			{"aws: prefix", tag("aws:owner", "x"), "Tags beginning with aws: are reserved"},
			{"AWS: prefix", tag("AWS:owner", "x"), "Tags beginning with aws: are reserved"},
			{"duplicate keys", tag("d", "1", "d", "2"), "Duplicate tag keys"},
			{"51 tags", tag(manyTags(51)...), "Too many tags"},
			{"over 50 with the existing 7", tag(manyTags(44)...), "Too many tags"},
		} {
			_, err := c.TagResource(t.Context(), &awskms.TagResourceInput{KeyId: k.KeyId, Tags: tc.tags})
			t.Run("TagException/"+tc.name, func(t *testing.T) { expectErr[*types.TagException](t, err, "TagException", tc.msg) })
		}
		long := strings.Repeat("k", 129)
		_, err = c.TagResource(t.Context(), &awskms.TagResourceInput{KeyId: k.KeyId, Tags: tag(long, "v")})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException",
			validationMsg("Value '"+long+"' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128"))
		_, err = c.TagResource(t.Context(), &awskms.TagResourceInput{KeyId: k.KeyId, Tags: tag("ok", "v", "v", strings.Repeat("v", 257))})
		expectErr[*smithy.GenericAPIError](t, err, "ValidationException", anyMessage)
		if got := list(); got != "env=dev,t1=1,t2=2,t3=3,t4=4,t5=5,t6=6" {
			t.Errorf("failed TagResource calls changed the tags: %s", got)
		}
		// 50 in all is fine.
		if _, err := c.TagResource(t.Context(), &awskms.TagResourceInput{KeyId: k.KeyId, Tags: tag(manyTags(43)...)}); err != nil {
			t.Errorf("TagResource up to 50 tags: %v", err)
		}

		_, err = c.TagResource(t.Context(), &awskms.TagResourceInput{KeyId: aws.String(unknownID), Tags: tag("a", "b")})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)
		_, err = c.UntagResource(t.Context(), &awskms.UntagResourceInput{KeyId: aws.String(unknownID), TagKeys: []string{"a"}})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)
		_, err = c.ListResourceTags(t.Context(), &awskms.ListResourceTagsInput{KeyId: aws.String(unknownID)})
		expectErr[*types.NotFoundException](t, err, "NotFoundException", unknownKeyMsg)
	})

	t.Run("Authentication", func(t *testing.T) { testAuthentication(t, s) })

	// Many clients at once on one key: every answer is right (and -race
	// watches the server).
	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 10 {
					pt := fmt.Appendf(nil, "goroutine %d message %d", g, i)
					ec := map[string]string{"g": fmt.Sprint(g)}
					enc, err := c.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: aws.String(aliasA), Plaintext: pt, EncryptionContext: ec})
					if err != nil {
						t.Errorf("Encrypt: %v", err)
						return
					}
					dec, err := c.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
					if err != nil {
						t.Errorf("Decrypt: %v", err)
						return
					}
					if !bytes.Equal(dec.Plaintext, pt) {
						t.Errorf("Decrypt: %q, want %q", dec.Plaintext, pt)
					}
				}
			})
		}
		wg.Wait()
	})

	// Last: every response the SDK received in this test, success or error,
	// carried a distinct x-amzn-RequestId and the JSON 1.1 content type.
	t.Run("RequestIDs", func(t *testing.T) {
		out, err := c.ListKeys(t.Context(), &awskms.ListKeysInput{Limit: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		responses := s.log.snapshot()
		if got, wire := requestIDOf(out.ResultMetadata), responses[len(responses)-1].requestID; got != wire || !uuidPattern.MatchString(got) {
			t.Errorf("SDK RequestID of a success %q, x-amzn-RequestId on the wire %q", got, wire)
		}
		_, err = c.DescribeKey(t.Context(), &awskms.DescribeKeyInput{KeyId: aws.String(unknownID)})
		responses = s.log.snapshot()
		re, ok := errors.AsType[*awshttp.ResponseError](err)
		if wire := responses[len(responses)-1].requestID; !ok || re.ServiceRequestID() != wire {
			t.Errorf("SDK RequestID of an error (%v), x-amzn-RequestId on the wire %q", err, wire)
		}
		seen := map[string]bool{}
		errorsSeen := 0
		for _, r := range responses {
			if !uuidPattern.MatchString(r.requestID) {
				t.Errorf("%s (HTTP %d): x-amzn-RequestId %q", r.operation, r.status, r.requestID)
			}
			if seen[r.requestID] {
				t.Errorf("%s: request id %s repeated", r.operation, r.requestID)
			}
			seen[r.requestID] = true
			if r.contentType != amzJSON11 {
				t.Errorf("%s (HTTP %d): Content-Type %q", r.operation, r.status, r.contentType)
			}
			if r.status != 200 {
				errorsSeen++
			}
			if r.status >= 500 {
				t.Errorf("%s: HTTP %d, a server fault", r.operation, r.status)
			}
		}
		if len(responses) < 100 || errorsSeen < 30 {
			t.Errorf("only %d responses (%d errors) recorded", len(responses), errorsSeen)
		}
		t.Logf("%d responses, %d errors, all with a request id", len(responses), errorsSeen)
	})
}

// createKey calls CreateKey and checks the metadata of the new key.
func (s *e2eServer) createKey(t *testing.T, in *awskms.CreateKeyInput) *types.KeyMetadata {
	t.Helper()
	out, err := s.client.CreateKey(t.Context(), in)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	s.checkKeyMetadata(t, out.KeyMetadata, aws.ToString(out.KeyMetadata.KeyId), aws.ToString(in.Description), types.KeyStateEnabled)
	return out.KeyMetadata
}

func (s *e2eServer) describe(t *testing.T, keyID string) *types.KeyMetadata {
	t.Helper()
	out, err := s.client.DescribeKey(t.Context(), &awskms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		t.Fatalf("DescribeKey %s: %v", keyID, err)
	}
	return out.KeyMetadata
}

// checkKeyMetadata checks KeyMetadata of a symmetric customer key member by
// member, as AWS returns it.
func (s *e2eServer) checkKeyMetadata(t *testing.T, md *types.KeyMetadata, keyID, description string, state types.KeyState) {
	t.Helper()
	if md == nil {
		t.Fatal("no KeyMetadata")
	}
	var errs []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	check(uuidPattern.MatchString(keyID), "KeyId %q is not a lower-case UUID", keyID)
	check(aws.ToString(md.KeyId) == keyID, "KeyId %q, want %q", aws.ToString(md.KeyId), keyID)
	check(aws.ToString(md.AWSAccountId) == s.account && accountPattern.MatchString(s.account), "AWSAccountId %q, want %q", aws.ToString(md.AWSAccountId), s.account)
	check(aws.ToString(md.Arn) == s.keyARN(keyID), "Arn %q, want %q", aws.ToString(md.Arn), s.keyARN(keyID))
	check(md.CreationDate != nil && within(*md.CreationDate, time.Now(), time.Hour), "CreationDate %v", md.CreationDate)
	check(md.Enabled == (state == types.KeyStateEnabled), "Enabled %v in state %s", md.Enabled, state)
	check(md.Description != nil && *md.Description == description, "Description %q, want %q", aws.ToString(md.Description), description)
	check(md.KeyUsage == types.KeyUsageTypeEncryptDecrypt, "KeyUsage %q", md.KeyUsage)
	check(md.KeyState == state, "KeyState %q, want %q", md.KeyState, state)
	if state == types.KeyStatePendingDeletion {
		check(md.DeletionDate != nil, "no DeletionDate in PendingDeletion")
	} else {
		check(md.DeletionDate == nil, "DeletionDate %v in state %s", md.DeletionDate, state)
	}
	check(md.ValidTo == nil && md.ExpirationModel == "", "ValidTo %v ExpirationModel %q on an AWS_KMS key", md.ValidTo, md.ExpirationModel)
	check(md.Origin == types.OriginTypeAwsKms, "Origin %q", md.Origin)
	check(md.KeyManager == types.KeyManagerTypeCustomer, "KeyManager %q", md.KeyManager)
	//lint:ignore SA1019 AWS still returns the deprecated twin of KeySpec, and clients still read it
	check(md.CustomerMasterKeySpec == types.CustomerMasterKeySpecSymmetricDefault, "CustomerMasterKeySpec %q", md.CustomerMasterKeySpec)
	check(md.KeySpec == types.KeySpecSymmetricDefault, "KeySpec %q", md.KeySpec)
	check(slices.Equal(md.EncryptionAlgorithms, []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecSymmetricDefault}), "EncryptionAlgorithms %v", md.EncryptionAlgorithms)
	check(md.SigningAlgorithms == nil && md.MacAlgorithms == nil && md.KeyAgreementAlgorithms == nil && md.EncapsulationAlgorithms == nil,
		"algorithms of other key usages: %v %v %v %v", md.SigningAlgorithms, md.MacAlgorithms, md.KeyAgreementAlgorithms, md.EncapsulationAlgorithms)
	check(md.MultiRegion != nil && !*md.MultiRegion, "MultiRegion %v, want false", md.MultiRegion)
	check(md.MultiRegionConfiguration == nil && md.PendingDeletionWindowInDays == nil, "multi-Region members on a single-Region key")
	check(md.CustomKeyStoreId == nil && md.CloudHsmClusterId == nil && md.XksKeyConfiguration == nil, "custom key store members")
	check(hex64Pattern.MatchString(aws.ToString(md.CurrentKeyMaterialId)), "CurrentKeyMaterialId %q", aws.ToString(md.CurrentKeyMaterialId))
	if len(errs) > 0 {
		t.Errorf("KeyMetadata of %s:\n  %s", keyID, strings.Join(errs, "\n  "))
	}
}

// checkDecrypt checks a Decrypt response for a ciphertext of key md.
func (s *e2eServer) checkDecrypt(t *testing.T, out *awskms.DecryptOutput, plaintext []byte, md *types.KeyMetadata) {
	t.Helper()
	if !bytes.Equal(out.Plaintext, plaintext) {
		t.Errorf("Decrypt: Plaintext %q, want %q", out.Plaintext, plaintext)
	}
	if want := s.keyARN(aws.ToString(md.KeyId)); aws.ToString(out.KeyId) != want {
		t.Errorf("Decrypt: KeyId %q, want the key ARN %q", aws.ToString(out.KeyId), want)
	}
	if out.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
		t.Errorf("Decrypt: EncryptionAlgorithm %q", out.EncryptionAlgorithm)
	}
	if aws.ToString(out.KeyMaterialId) != aws.ToString(md.CurrentKeyMaterialId) {
		t.Errorf("Decrypt: KeyMaterialId %q, want %q", aws.ToString(out.KeyMaterialId), aws.ToString(md.CurrentKeyMaterialId))
	}
	if out.CiphertextForRecipient != nil {
		t.Error("Decrypt: CiphertextForRecipient without a Recipient")
	}
}

// checkDataKeyErrors checks the ValidationExceptions shared by
// GenerateDataKey and GenerateDataKeyWithoutPlaintext.
func (s *e2eServer) checkDataKeyErrors(t *testing.T, call func(*awskms.GenerateDataKeyInput) error, keyID string) {
	t.Helper()
	err := call(&awskms.GenerateDataKeyInput{KeyId: aws.String(keyID), NumberOfBytes: aws.Int32(0)})
	expectErr[*smithy.GenericAPIError](t, err, "ValidationException",
		validationMsg("Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"))
	err = call(&awskms.GenerateDataKeyInput{KeyId: aws.String(keyID), NumberOfBytes: aws.Int32(1025)})
	expectErr[*smithy.GenericAPIError](t, err, "ValidationException",
		validationMsg("Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"))
	err = call(&awskms.GenerateDataKeyInput{KeyId: aws.String(keyID)})
	expectErr[*smithy.GenericAPIError](t, err, "ValidationException", anyMessage)
	err = call(&awskms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)})
	expectErr[*smithy.GenericAPIError](t, err, "ValidationException", anyMessage)
	err = call(&awskms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: "AES_512"})
	expectErr[*smithy.GenericAPIError](t, err, "ValidationException", anyMessage)
}

// checkScheduled checks a ScheduleKeyDeletion response.
func checkScheduled(t *testing.T, out *awskms.ScheduleKeyDeletionOutput, arn string, days int32) {
	t.Helper()
	if aws.ToString(out.KeyId) != arn {
		t.Errorf("ScheduleKeyDeletion KeyId %q, want %q", aws.ToString(out.KeyId), arn)
	}
	if out.KeyState != types.KeyStatePendingDeletion {
		t.Errorf("ScheduleKeyDeletion KeyState %q", out.KeyState)
	}
	if aws.ToInt32(out.PendingWindowInDays) != days {
		t.Errorf("ScheduleKeyDeletion PendingWindowInDays %v, want %d", out.PendingWindowInDays, days)
	}
	want := time.Now().Add(time.Duration(days) * 24 * time.Hour)
	if out.DeletionDate == nil || !within(*out.DeletionDate, want, time.Minute) {
		t.Errorf("ScheduleKeyDeletion DeletionDate %v, want %v ± 1 min", out.DeletionDate, want)
	}
}

// findAlias returns the ListAliases entry named name (of key keyID when
// keyID is not empty), or nil.
func (s *e2eServer) findAlias(t *testing.T, name, keyID string) *types.AliasListEntry {
	t.Helper()
	in := &awskms.ListAliasesInput{Limit: aws.Int32(100)}
	if keyID != "" {
		in.KeyId = aws.String(keyID)
	}
	out, err := s.client.ListAliases(t.Context(), in)
	if err != nil {
		t.Fatalf("ListAliases: %v", err)
	}
	for i, a := range out.Aliases {
		if aws.ToString(a.AliasName) == name {
			return &out.Aliases[i]
		}
	}
	return nil
}

// keyIDs returns the key ids of a ListKeys page, checking each KeyArn.
func keyIDs(t *testing.T, s *e2eServer, keys []types.KeyListEntry) []string {
	t.Helper()
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = aws.ToString(k.KeyId)
		if aws.ToString(k.KeyArn) != s.keyARN(ids[i]) {
			t.Errorf("ListKeys entry %s: KeyArn %q, want %q", ids[i], aws.ToString(k.KeyArn), s.keyARN(ids[i]))
		}
	}
	return ids
}

func aliasNames(aliases []types.AliasListEntry) []string {
	names := make([]string, len(aliases))
	for i, a := range aliases {
		names[i] = aws.ToString(a.AliasName)
	}
	return names
}

// tagList renders tags as "k=v,k=v" in the order given.
func tagList(tags []types.Tag) string {
	parts := make([]string, len(tags))
	for i, tg := range tags {
		parts[i] = aws.ToString(tg.TagKey) + "=" + aws.ToString(tg.TagValue)
	}
	return strings.Join(parts, ",")
}

// manyTags returns n distinct key/value pairs, flattened.
func manyTags(n int) []string {
	var kv []string
	for i := range n {
		kv = append(kv, fmt.Sprintf("many-%02d", i), "v")
	}
	return kv
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
