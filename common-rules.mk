# Rules shared by every Makefile.am in shardkit.

SHARDKIT_CFLAGS = $(WARNINGS_CFLAGS) $(SANITIZER_CFLAGS) \
	-I$(top_srcdir)/common -I$(top_builddir) -pthread

# nbdkit plugins and filters are dlopen'd modules named exactly
# nbdkit-NAME-plugin.so / nbdkit-NAME-filter.so, exporting only their
# init symbol.
SHARDKIT_MODULE_LINK = -module -avoid-version -shared $(SANITIZER_CFLAGS) \
	-Wl,--version-script=$(top_srcdir)/common/module.syms

# Man pages from POD beside each plugin/filter.
SUFFIXES = .pod .1
.pod.1:
	$(AM_V_GEN)$(POD2MAN) --section=1 --center="shardkit" \
	  --release="shardkit $(PACKAGE_VERSION)" --name=$(basename $(notdir $@)) \
	  $< > $@.tmp && mv $@.tmp $@

# nbdkit loads the .so; libtool's .la files have no use in its directories.
install-data-hook:
	@for f in $(plugin_LTLIBRARIES); do rm -f "$(DESTDIR)$(plugindir)/$$f"; done
	@for f in $(filter_LTLIBRARIES); do rm -f "$(DESTDIR)$(filterdir)/$$f"; done
