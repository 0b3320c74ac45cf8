// Package targets is djship's library of host targets: built on the
// remote package, everything done to hosts (provision, plan, ship,
// upgrade, rollback, status...), each an ordered list of steps run on
// every host. It ships the tarballs that the release package builds and
// inspects on this machine (a *release.Tarball). Magefiles call it; other
// repositories can import it to add targets and steps of their own.
package targets
