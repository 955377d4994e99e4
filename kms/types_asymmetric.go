package kms

// Request and response shapes of the asymmetric and HMAC operations.

// SignInput is the Sign request.
type SignInput struct {
	KeyId            *string  `json:"KeyId"`
	Message          []byte   `json:"Message"`
	MessageType      *string  `json:"MessageType"`
	GrantTokens      []string `json:"GrantTokens"`
	SigningAlgorithm *string  `json:"SigningAlgorithm"`
	DryRun           *bool    `json:"DryRun"`
}

// SignOutput is the Sign response.
type SignOutput struct {
	KeyId            string `json:"KeyId"`
	Signature        []byte `json:"Signature"`
	SigningAlgorithm string `json:"SigningAlgorithm"`
}

// VerifyInput is the Verify request.
type VerifyInput struct {
	KeyId            *string  `json:"KeyId"`
	Message          []byte   `json:"Message"`
	MessageType      *string  `json:"MessageType"`
	Signature        []byte   `json:"Signature"`
	SigningAlgorithm *string  `json:"SigningAlgorithm"`
	GrantTokens      []string `json:"GrantTokens"`
	DryRun           *bool    `json:"DryRun"`
}

// VerifyOutput is the Verify response.
type VerifyOutput struct {
	KeyId            string `json:"KeyId"`
	SignatureValid   bool   `json:"SignatureValid"`
	SigningAlgorithm string `json:"SigningAlgorithm"`
}

// GetPublicKeyInput is the GetPublicKey request.
type GetPublicKeyInput struct {
	KeyId       *string  `json:"KeyId"`
	GrantTokens []string `json:"GrantTokens"`
}

// GetPublicKeyOutput is the GetPublicKey response.
type GetPublicKeyOutput struct {
	KeyId                 string   `json:"KeyId"`
	PublicKey             []byte   `json:"PublicKey"`
	CustomerMasterKeySpec string   `json:"CustomerMasterKeySpec"`
	KeySpec               string   `json:"KeySpec"`
	KeyUsage              string   `json:"KeyUsage"`
	EncryptionAlgorithms  []string `json:"EncryptionAlgorithms,omitempty"`
	SigningAlgorithms     []string `json:"SigningAlgorithms,omitempty"`
}

// GenerateMacInput is the GenerateMac request.
type GenerateMacInput struct {
	Message      []byte   `json:"Message"`
	KeyId        *string  `json:"KeyId"`
	MacAlgorithm *string  `json:"MacAlgorithm"`
	GrantTokens  []string `json:"GrantTokens"`
	DryRun       *bool    `json:"DryRun"`
}

// GenerateMacOutput is the GenerateMac response.
type GenerateMacOutput struct {
	Mac          []byte `json:"Mac"`
	MacAlgorithm string `json:"MacAlgorithm"`
	KeyId        string `json:"KeyId"`
}

// VerifyMacInput is the VerifyMac request.
type VerifyMacInput struct {
	Message      []byte   `json:"Message"`
	KeyId        *string  `json:"KeyId"`
	MacAlgorithm *string  `json:"MacAlgorithm"`
	Mac          []byte   `json:"Mac"`
	GrantTokens  []string `json:"GrantTokens"`
	DryRun       *bool    `json:"DryRun"`
}

// VerifyMacOutput is the VerifyMac response.
type VerifyMacOutput struct {
	KeyId        string `json:"KeyId"`
	MacValid     bool   `json:"MacValid"`
	MacAlgorithm string `json:"MacAlgorithm"`
}

// GenerateDataKeyPairInput is the GenerateDataKeyPair and
// GenerateDataKeyPairWithoutPlaintext request.
type GenerateDataKeyPairInput struct {
	EncryptionContext map[string]string `json:"EncryptionContext"`
	KeyId             *string           `json:"KeyId"`
	KeyPairSpec       *string           `json:"KeyPairSpec"`
	GrantTokens       []string          `json:"GrantTokens"`
	Recipient         *RecipientInfo    `json:"Recipient"`
	DryRun            *bool             `json:"DryRun"`
}

// GenerateDataKeyPairOutput is the GenerateDataKeyPair response.
type GenerateDataKeyPairOutput struct {
	PrivateKeyCiphertextBlob []byte `json:"PrivateKeyCiphertextBlob"`
	PrivateKeyPlaintext      []byte `json:"PrivateKeyPlaintext"`
	PublicKey                []byte `json:"PublicKey"`
	KeyId                    string `json:"KeyId"`
	KeyPairSpec              string `json:"KeyPairSpec"`
	KeyMaterialId            string `json:"KeyMaterialId,omitempty"`
}

// GenerateDataKeyPairWithoutPlaintextOutput is the
// GenerateDataKeyPairWithoutPlaintext response.
type GenerateDataKeyPairWithoutPlaintextOutput struct {
	PrivateKeyCiphertextBlob []byte `json:"PrivateKeyCiphertextBlob"`
	PublicKey                []byte `json:"PublicKey"`
	KeyId                    string `json:"KeyId"`
	KeyPairSpec              string `json:"KeyPairSpec"`
	KeyMaterialId            string `json:"KeyMaterialId,omitempty"`
}
