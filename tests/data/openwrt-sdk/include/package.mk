# Stand-in for OpenWrt's include/package.mk: BuildPackage makes a target `install-NAME` that runs
# Package/NAME/install with $(1) = $(DESTDIR), and `prepare` runs
# Build/Prepare.
PKG_BUILD_DIR ?= $(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)
PKG_INSTALL_DIR ?= $(PKG_BUILD_DIR)/ipkg-install

define BuildPackage
install-$(1):
	$$(call Package/$(1)/install,$$(DESTDIR))

prepare:
	$$(Build/Prepare)
endef
