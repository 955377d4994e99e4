package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"hsmkms/kms"
)

// reportBootstrap writes a newly created admin access key to the credentials
// file and tells the operator where it is. The secret goes to the file only:
// never to stdout, never to the log.
func reportBootstrap(log *slog.Logger, stdout io.Writer, cfg Config, boot kms.BootstrapResult, endpoint string) error {
	path, err := filepath.Abs(cfg.CredentialsFile)
	if err != nil {
		path = cfg.CredentialsFile
	}
	if boot.Created {
		data := credentialsFile(boot, cfg.Region, endpoint, path)
		if err := writeFileAtomic(path, data, 0o600); err != nil {
			return fmt.Errorf("write bootstrap credentials (the new admin secret is lost; "+
				"remove %s and start again to create a new admin): %w", cfg.Database, err)
		}
		log.Info("bootstrap credentials written", "account", boot.AccountID, "access_key_id", boot.AccessKeyID, "credentials_file", path)
		fmt.Fprintf(stdout, "kmsd: bootstrap admin credentials written to %s (account %s)\n", path, boot.AccountID)
		return nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		log.Warn("admin credentials file is missing; the secret was shown only once, when it was written there",
			"account", boot.AccountID, "access_key_id", boot.AccessKeyID, "credentials_file", path)
		fmt.Fprintf(stdout, "kmsd: admin credentials file %s is missing (account %s); kmsd -reset-admin-key makes a new admin key\n", path, boot.AccountID)
		return nil
	}
	log.Info("admin exists", "account", boot.AccountID, "access_key_id", boot.AccessKeyID, "credentials_file", path)
	fmt.Fprintf(stdout, "kmsd: admin credentials in %s (account %s)\n", path, boot.AccountID)
	return nil
}

// credentialsFile renders an AWS shared-credentials file (the form read by
// AWS_SHARED_CREDENTIALS_FILE) for the admin access key.
func credentialsFile(boot kms.BootstrapResult, region, endpoint, path string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# kmsd bootstrap admin access key (AWS shared-credentials file).\n")
	fmt.Fprintf(&b, "# account: %s\n", boot.AccountID)
	fmt.Fprintf(&b, "# region: %s\n", region)
	fmt.Fprintf(&b, "# endpoint: %s\n", endpoint)
	fmt.Fprintf(&b, "# usage: AWS_SHARED_CREDENTIALS_FILE=%s aws --endpoint-url %s --region %s kms list-keys\n",
		path, endpoint, region)
	fmt.Fprintf(&b, "[default]\n")
	fmt.Fprintf(&b, "aws_access_key_id = %s\n", boot.AccessKeyID)
	fmt.Fprintf(&b, "aws_secret_access_key = %s\n", boot.Secret)
	return []byte(b.String())
}

// writeFileAtomic writes data to a temporary file in path's directory and
// renames it over path, so readers see the old file or the whole new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// checkWritableDir fails unless a file can be created in dir.
func checkWritableDir(dir string) error {
	f, err := os.CreateTemp(dir, ".kmsd-write-check*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
