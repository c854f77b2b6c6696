# `make install`: included from the top-level Makefile, which defines PREFIX
# (default /usr/local), DESTDIR (default empty), BUILD and PROGS.
#
#   make install                         # binaries to /usr/local/bin
#   make install PREFIX=/usr DESTDIR=/tmp/pkgroot
#
# Installs:
#   $(DESTDIR)$(PREFIX)/bin/canaryd, canaryctl, and kubectl-canary (a
#                                         symlink to canaryctl: kubectl canary)
#                                         and kubectl_complete-canary (its completion)
#   $(DESTDIR)/lib/systemd/system/canaryd.service   (ExecStart -> $(PREFIX)/bin)
#   $(DESTDIR)/etc/canaryd/checkout.yaml           (only when /etc/canaryd holds
#                                                   no rollout file yet)
#   $(DESTDIR)/usr/share/bash-completion/completions/canaryctl
#   $(DESTDIR)/usr/share/zsh/vendor-completions/_canaryctl
#   $(DESTDIR)/usr/share/fish/vendor_completions.d/canaryctl.fish
# Not the lab's test tools (make lab): they are for the labs and benchmarks.
# Then: systemctl daemon-reload && systemctl enable --now canaryd (docs/deploy.md).

INSTALL         ?= install
BINDIR          ?= $(PREFIX)/bin
UNITDIR         ?= /lib/systemd/system
CONFDIR         ?= /etc/canaryd
COMPLETIONDIR   ?= /usr/share/bash-completion/completions
ZSH_COMPLETIONDIR  ?= /usr/share/zsh/vendor-completions
FISH_COMPLETIONDIR ?= /usr/share/fish/vendor_completions.d

.PHONY: install
install: all
	$(INSTALL) -d -m 0755 $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 0755 $(PROGS) $(DESTDIR)$(BINDIR)/
	ln -sfn canaryctl $(DESTDIR)$(BINDIR)/kubectl-canary
	$(INSTALL) -m 0755 deploy/completion/kubectl_complete-canary $(DESTDIR)$(BINDIR)/
	$(INSTALL) -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's#/usr/local/bin/canaryd#$(BINDIR)/canaryd#g' deploy/systemd/canaryd.service \
		> $(DESTDIR)$(UNITDIR)/canaryd.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/canaryd.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/canaryd.service.tmp $(DESTDIR)$(UNITDIR)/canaryd.service
	$(INSTALL) -d -m 0755 $(DESTDIR)$(CONFDIR)
	@# The sample goes in only on a fresh install: a running agent would pick
	@# up any new file in its directory at once.
	@found=; for f in $(DESTDIR)$(CONFDIR)/*.yaml $(DESTDIR)$(CONFDIR)/*.yml; do \
		[ -e "$$f" ] && found=1; \
	done; \
	if [ -n "$$found" ]; then \
		echo "install: $(DESTDIR)$(CONFDIR) already has rollout files: sample not installed"; \
	else \
		echo "$(INSTALL) -m 0644 deploy/config/checkout.yaml $(DESTDIR)$(CONFDIR)/checkout.yaml"; \
		$(INSTALL) -m 0644 deploy/config/checkout.yaml $(DESTDIR)$(CONFDIR)/checkout.yaml; \
	fi
	$(INSTALL) -d -m 0755 $(DESTDIR)$(COMPLETIONDIR)
	$(INSTALL) -m 0644 deploy/completion/canaryctl.bash $(DESTDIR)$(COMPLETIONDIR)/canaryctl
	$(INSTALL) -d -m 0755 $(DESTDIR)$(ZSH_COMPLETIONDIR) $(DESTDIR)$(FISH_COMPLETIONDIR)
	$(INSTALL) -m 0644 deploy/completion/_canaryctl $(DESTDIR)$(ZSH_COMPLETIONDIR)/_canaryctl
	$(INSTALL) -m 0644 deploy/completion/canaryctl.fish \
		$(DESTDIR)$(FISH_COMPLETIONDIR)/canaryctl.fish
