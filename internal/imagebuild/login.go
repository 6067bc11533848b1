package imagebuild

import (
	"errors"
	"fmt"
	"os"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
)

// Login stores REGISTRY_USERNAME and REGISTRY_PASSWORD for the registry
// host in the Docker configuration ($DOCKER_CONFIG/config.json, else
// ~/.docker/config.json), where go-containerregistry, helm (pointed at it
// with HELM_REGISTRY_CONFIG), syft and cosign all look. The password is
// read from the environment only, never from a flag, and never printed.
func Login(host string) (string, error) {
	user, pass := os.Getenv("REGISTRY_USERNAME"), os.Getenv("REGISTRY_PASSWORD")
	if user == "" || pass == "" {
		return "", errors.New("set REGISTRY_USERNAME and REGISTRY_PASSWORD")
	}
	cf, err := config.Load(config.Dir())
	if err != nil {
		return "", fmt.Errorf("docker configuration: %w", err)
	}
	if err := cf.GetCredentialsStore(host).Store(types.AuthConfig{ServerAddress: host, Username: user, Password: pass}); err != nil {
		return "", fmt.Errorf("store credentials for %s: %w", host, err)
	}
	if err := cf.Save(); err != nil {
		return "", fmt.Errorf("save docker configuration: %w", err)
	}
	return cf.Filename, nil
}
