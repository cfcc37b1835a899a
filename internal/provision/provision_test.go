package provision

import "testing"

func TestSCRAMVerifier(t *testing.T) {
	salt := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	got, err := scramVerifierWithSalt("pencil", salt, 4096)
	// Computed independently with Python's hashlib.pbkdf2_hmac and hmac.
	want := "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE="
	if err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if _, err := scramVerifier("x", 0); err == nil {
		t.Errorf("0 iterations: got nil error")
	}
}

func TestMD5Verifier(t *testing.T) {
	if got, want := md5Verifier("secret", "alice"), "md54a0a68b43b6cd5cf266fa02f196e2371"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNewPassword(t *testing.T) {
	a, err := newPassword()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newPassword()
	if len(a) != 43 || a == b {
		t.Errorf("got %q and %q, want two distinct 43-character passwords", a, b)
	}
}
