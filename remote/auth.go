package remote

import (
	"errors"
	"fmt"
	"os"

	"github.com/melbahja/goph"
	"golang.org/x/crypto/ssh"
)

// authMethods offers ssh-agent's keys first, then the endpoint's key
// files. tried names them for the error when the host refuses all.
func authMethods(e endpoint, passphrase func(string) ([]byte, error)) ([]ssh.AuthMethod, []string, error) {
	var methods []ssh.AuthMethod
	var tried []string
	if os.Getenv("SSH_AUTH_SOCK") != "" && goph.HasAgent() {
		if agent, err := goph.UseAgent(); err == nil {
			methods = append(methods, agent...)
			tried = append(tried, "ssh-agent")
		}
	}
	var signers []ssh.Signer
	for _, file := range e.identities {
		signer, err := goph.GetSigner(file, "")
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			pass, perr := passphrase(file)
			if perr != nil {
				if len(methods) == 0 && len(e.identities) == 1 {
					return nil, nil, perr
				}
				continue
			}
			signer, err = goph.GetSigner(file, string(pass))
		}
		if err != nil {
			if os.IsNotExist(err) {
				return nil, nil, fmt.Errorf("identity file %s does not exist", file)
			}
			return nil, nil, fmt.Errorf("identity file %s: %w", file, err)
		}
		signers = append(signers, signer)
		tried = append(tried, file)
	}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	if len(methods) == 0 {
		return nil, nil, fmt.Errorf("no key to log in to %s with: start ssh-agent with your key, create ~/.ssh/id_ed25519, or set ssh.identity in the site file", e)
	}
	return methods, tried, nil
}
