package kms

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"hsmkms/hsm"
)

// Config configures a Service.
type Config struct {
	// Region is the AWS region the service answers for (key ARNs name it).
	Region string
	Device hsm.Device
	Store  Store
	Logger *slog.Logger
	// Now returns the current time; tests replace it.
	Now func() time.Time
	// InvocationBound is the most AES-GCM encryptions one key version may
	// ever make with random IVs. Default 2^32 (NIST SP 800-38D, 8.3).
	InvocationBound uint64
	// ReserveBlock is how many invocations are reserved from the store at a
	// time. Default 2^16.
	ReserveBlock uint64
}

// Service implements the AWS KMS operations. One method per operation.
type Service struct {
	cfg Config
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	return &Service{cfg: cfg}, nil
}

var errTODO = errors.New("operation not wired yet")

func (s *Service) CreateKey(ctx context.Context, in *CreateKeyInput) (*CreateKeyOutput, error) {
	return nil, Internal(errTODO)
}
func (s *Service) DescribeKey(ctx context.Context, in *DescribeKeyInput) (*DescribeKeyOutput, error) {
	return nil, Internal(errTODO)
}
func (s *Service) ListKeys(ctx context.Context, in *ListKeysInput) (*ListKeysOutput, error) {
	return nil, Internal(errTODO)
}
func (s *Service) UpdateKeyDescription(ctx context.Context, in *UpdateKeyDescriptionInput) (*Empty, error) {
	return nil, Internal(errTODO)
}
func (s *Service) Encrypt(ctx context.Context, in *EncryptInput) (*EncryptOutput, error) {
	return nil, Internal(errTODO)
}
func (s *Service) Decrypt(ctx context.Context, in *DecryptInput) (*DecryptOutput, error) {
	return nil, Internal(errTODO)
}
func (s *Service) ReEncrypt(ctx context.Context, in *ReEncryptInput) (*ReEncryptOutput, error) {
	return nil, Internal(errTODO)
}
func (s *Service) GenerateDataKey(ctx context.Context, in *GenerateDataKeyInput) (*GenerateDataKeyOutput, error) {
	return nil, Internal(errTODO)
}
func (s *Service) GenerateDataKeyWithoutPlaintext(ctx context.Context, in *GenerateDataKeyInput) (*GenerateDataKeyWithoutPlaintextOutput, error) {
	return nil, Internal(errTODO)
}
func (s *Service) GenerateRandom(ctx context.Context, in *GenerateRandomInput) (*GenerateRandomOutput, error) {
	return nil, Internal(errTODO)
}
func (s *Service) EnableKey(ctx context.Context, in *KeyIdInput) (*Empty, error) {
	return nil, Internal(errTODO)
}
func (s *Service) DisableKey(ctx context.Context, in *KeyIdInput) (*Empty, error) {
	return nil, Internal(errTODO)
}
func (s *Service) ScheduleKeyDeletion(ctx context.Context, in *ScheduleKeyDeletionInput) (*ScheduleKeyDeletionOutput, error) {
	return nil, Internal(errTODO)
}
func (s *Service) CancelKeyDeletion(ctx context.Context, in *KeyIdInput) (*CancelKeyDeletionOutput, error) {
	return nil, Internal(errTODO)
}
func (s *Service) CreateAlias(ctx context.Context, in *AliasInput) (*Empty, error) {
	return nil, Internal(errTODO)
}
func (s *Service) UpdateAlias(ctx context.Context, in *AliasInput) (*Empty, error) {
	return nil, Internal(errTODO)
}
func (s *Service) DeleteAlias(ctx context.Context, in *DeleteAliasInput) (*Empty, error) {
	return nil, Internal(errTODO)
}
func (s *Service) ListAliases(ctx context.Context, in *ListAliasesInput) (*ListAliasesOutput, error) {
	return nil, Internal(errTODO)
}
func (s *Service) TagResource(ctx context.Context, in *TagResourceInput) (*Empty, error) {
	return nil, Internal(errTODO)
}
func (s *Service) UntagResource(ctx context.Context, in *UntagResourceInput) (*Empty, error) {
	return nil, Internal(errTODO)
}
func (s *Service) ListResourceTags(ctx context.Context, in *ListResourceTagsInput) (*ListResourceTagsOutput, error) {
	return nil, Internal(errTODO)
}

// LookupAccessKey returns the active access key with the given id, for SigV4
// verification. Unknown or inactive ids give ErrStoreNotFound.
func (s *Service) LookupAccessKey(ctx context.Context, id string) (AccessKey, error) {
	return AccessKey{}, Internal(errTODO)
}

// Region returns the region the service answers for.
func (s *Service) Region() string { return s.cfg.Region }

// BootstrapResult says what Bootstrap did.
type BootstrapResult struct {
	AccountID   string
	AccessKeyID string
	// Secret is the new admin secret access key; empty when the admin already
	// existed (secrets are shown once, at creation).
	Secret  string
	Created bool
}

// Bootstrap makes sure the default account and its admin access key exist.
// On first start it creates them and returns the secret once.
func (s *Service) Bootstrap(ctx context.Context) (BootstrapResult, error) {
	return BootstrapResult{}, Internal(errTODO)
}

// ReconcileReport says what the start-up reconciler found and settled.
type ReconcileReport struct {
	CompletedCreates  int      // intents whose token object existed: committed
	AbandonedCreates  int      // intents without a token object: tombstoned
	CompletedDestroys int      // versions marked Destroying, now destroyed
	MissingObjects    []string // versions metadata references whose object is missing (never served)
	OrphanObjects     []string // token objects no version references (reported, not destroyed)
}

// Reconcile settles what a crash left between the HSM and the database. Run
// it at start-up before serving.
func (s *Service) Reconcile(ctx context.Context) (ReconcileReport, error) {
	return ReconcileReport{}, Internal(errTODO)
}

// RunDeletionWorker destroys keys whose deletion window has ended, checking
// every interval, until ctx is done.
func (s *Service) RunDeletionWorker(ctx context.Context, interval time.Duration) {
	<-ctx.Done()
}

// Health reports whether the service can serve requests (the HSM answers).
func (s *Service) Health(ctx context.Context) error {
	return Internal(errTODO)
}
