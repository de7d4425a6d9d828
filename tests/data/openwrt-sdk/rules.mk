# Stand-in for OpenWrt's rules.mk, enough for tests/packaging.rs to run the kcptun package's install
# recipe with real install(1)/ln(1) into a temporary directory.
INCLUDE_DIR:=$(TOPDIR)/include
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_DATA:=install -m0644
INSTALL_CONF:=install -m0600
LN:=ln -sf
CP:=cp -fpR
