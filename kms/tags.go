package kms

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"hsmkms/kms/policy"
)

// maxTagsPerKey is AWS's quota of tags on one key.
const maxTagsPerKey = 50

// validateTags checks a Tags member as AWS does: TagKey 1..128 and TagValue
// 0..256 (ValidationException), at most 50, no duplicate keys and no "aws:"
// prefix (TagException).
// validatePrincipalTags is validateTags for the tags of users and roles,
// whose keys IAM compares without regard to case ("Duplicate tag keys
// found. Please note that Tag keys are case insensitive."): two keys that
// differ only in case would meet in one aws:PrincipalTag/KEY condition key.
func validatePrincipalTags(tags []Tag) ([]TagRecord, error) {
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if t.TagKey == nil {
			continue // validateTags says what is wrong
		}
		k := strings.ToLower(*t.TagKey)
		if seen[k] {
			return nil, Errorf(CodeValidation, "Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		seen[k] = true
	}
	return validateTags(tags)
}

func validateTags(tags []Tag) ([]TagRecord, error) {
	if len(tags) > maxTagsPerKey {
		return nil, Errorf(CodeTag, "Too many tags")
	}
	seen := make(map[string]bool, len(tags))
	out := make([]TagRecord, 0, len(tags))
	for i, t := range tags {
		key, err := requireString(fmt.Sprintf("tags.%d.member.tagKey", i+1), t.TagKey, 1, 128)
		if err != nil {
			return nil, err
		}
		value, err := requireString(fmt.Sprintf("tags.%d.member.tagValue", i+1), t.TagValue, 0, 256)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(strings.ToLower(key), "aws:") {
			return nil, Errorf(CodeTag, "Tags beginning with aws: are reserved")
		}
		// Keys differing only in case are one key to aws:RequestTag
		// conditions, whose key part IAM matches without regard to case:
		// with two in one request the last would decide, and [Env=prod,
		// env=dev] would dodge a Deny on aws:RequestTag/env=prod. AWS
		// accepts such a request (its tag keys are case-sensitive); here
		// it is refused. Across requests both spellings may stand.
		if seen[strings.ToLower(key)] {
			return nil, Errorf(CodeTag, "Duplicate tag keys")
		}
		seen[strings.ToLower(key)] = true
		out = append(out, TagRecord{Key: key, Value: value})
	}
	return out, nil
}

// TagResource adds or overwrites tags of a key.
func (s *Service) TagResource(ctx context.Context, in *TagResourceInput) (*Empty, error) {
	if in.Tags == nil {
		return nil, validationf("Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	tags, err := validateTags(in.Tags)
	if err != nil {
		return nil, err
	}
	a := forAction("TagResource")
	a.conds = requestTagConds(tags)
	r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOnly, a)
	if err != nil {
		return nil, err
	}
	if err := checkNotPendingDeletion(r); err != nil {
		return nil, err
	}
	if err := s.store.PutTags(ctx, r.key.ID, tags, maxTagsPerKey); err != nil {
		if errors.Is(err, ErrStoreExhausted) {
			return nil, Errorf(CodeTag, "Too many tags")
		}
		return nil, Internal(err)
	}
	s.authz.invalidateKey(r.key.ID) // aws:ResourceTag keys
	return &Empty{}, nil
}

// UntagResource removes tags of a key; absent tag keys are not an error.
func (s *Service) UntagResource(ctx context.Context, in *UntagResourceInput) (*Empty, error) {
	if in.TagKeys == nil {
		return nil, validationf("Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")
	}
	for i, k := range in.TagKeys {
		if err := checkLength(fmt.Sprintf("tagKeys.%d.member", i+1), k, 1, 128); err != nil {
			return nil, err
		}
	}
	a := forAction("UntagResource")
	if len(in.TagKeys) > 0 {
		a.conds = map[string][]string{policy.KeyTagKeys: in.TagKeys}
	}
	r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOnly, a)
	if err != nil {
		return nil, err
	}
	if err := checkNotPendingDeletion(r); err != nil {
		return nil, err
	}
	if err := s.store.DeleteTags(ctx, r.key.ID, in.TagKeys); err != nil {
		return nil, Internal(err)
	}
	s.authz.invalidateKey(r.key.ID) // aws:ResourceTag keys
	return &Empty{}, nil
}

// ListResourceTags lists a key's tags in tag key order.
func (s *Service) ListResourceTags(ctx context.Context, in *ListResourceTagsInput) (*ListResourceTagsOutput, error) {
	r, err := s.resolveKey(ctx, "keyId", in.KeyId, keyOnly, "ListResourceTags")
	if err != nil {
		return nil, err
	}
	limit, after, err := pageParams(in.Limit, in.Marker, 50, 50)
	if err != nil {
		return nil, err
	}
	tags, err := s.store.ListTags(ctx, r.key.ID, after, limit+1)
	if err != nil {
		return nil, Internal(err)
	}
	out := &ListResourceTagsOutput{Tags: []Tag{}}
	for i, t := range tags {
		if i == limit {
			out.Truncated = true
			out.NextMarker = encodeMarker(tags[i-1].Key)
			break
		}
		key, value := t.Key, t.Value
		out.Tags = append(out.Tags, Tag{TagKey: &key, TagValue: &value})
	}
	return out, nil
}

// requestTagConds are the aws:RequestTag/KEY and aws:TagKeys condition keys
// of a request that sets tags.
func requestTagConds(tags []TagRecord) map[string][]string {
	if len(tags) == 0 {
		return nil
	}
	conds := make(map[string][]string, len(tags)+1)
	keys := make([]string, 0, len(tags))
	for _, t := range tags {
		keys = append(keys, t.Key)
		conds[policy.KeyRequestTagPrefix+strings.ToLower(t.Key)] = []string{t.Value}
	}
	conds[policy.KeyTagKeys] = keys
	return conds
}
