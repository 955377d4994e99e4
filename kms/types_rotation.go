package kms

// EnableKeyRotationInput is the EnableKeyRotation request.
type EnableKeyRotationInput struct {
	KeyId                *string `json:"KeyId"`
	RotationPeriodInDays *int32  `json:"RotationPeriodInDays"`
}

// GetKeyRotationStatusOutput is the GetKeyRotationStatus response.
type GetKeyRotationStatusOutput struct {
	KeyRotationEnabled        bool       `json:"KeyRotationEnabled"`
	KeyId                     string     `json:"KeyId"`
	RotationPeriodInDays      *int32     `json:"RotationPeriodInDays,omitempty"`
	NextRotationDate          *Timestamp `json:"NextRotationDate,omitempty"`
	OnDemandRotationStartDate *Timestamp `json:"OnDemandRotationStartDate,omitempty"`
}

// RotateKeyOnDemandOutput is the RotateKeyOnDemand response.
type RotateKeyOnDemandOutput struct {
	KeyId string `json:"KeyId"`
}

// ListKeyRotationsInput is the ListKeyRotations request.
type ListKeyRotationsInput struct {
	KeyId              *string `json:"KeyId"`
	IncludeKeyMaterial *string `json:"IncludeKeyMaterial"`
	Limit              *int32  `json:"Limit"`
	Marker             *string `json:"Marker"`
}

// RotationsListEntry is one entry of ListKeyRotations.
type RotationsListEntry struct {
	KeyId            string     `json:"KeyId"`
	KeyMaterialId    string     `json:"KeyMaterialId,omitempty"`
	KeyMaterialState string     `json:"KeyMaterialState,omitempty"`
	RotationDate     *Timestamp `json:"RotationDate,omitempty"`
	RotationType     string     `json:"RotationType,omitempty"`
}

// ListKeyRotationsOutput is the ListKeyRotations response.
type ListKeyRotationsOutput struct {
	Rotations  []RotationsListEntry `json:"Rotations"`
	NextMarker string               `json:"NextMarker,omitempty"`
	Truncated  bool                 `json:"Truncated"`
}
