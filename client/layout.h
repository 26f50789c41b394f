/* Where sftunnel files live in an FMC tree (DESIGN.md section 1), under a
 * root that is "/" in production and a temporary tree in tests. */
#ifndef SFTCA_LAYOUT_H
#define SFTCA_LAYOUT_H

#include "msg.h"

#include <stddef.h>

#define LAYOUT_CERT "sftunnel-cert.pem"
#define LAYOUT_KEY "sftunnel-key.pem"
#define LAYOUT_BUNDLE "cacert.pem"
#define LAYOUT_CRL "crl.pem"
/* Beside a peer's pair: "<sha256 of the key file>  sftunnel-key.pem", written
 * with every key sftca issue makes (--rekey, a missing or revoked key). push
 * sends a key that differs from the device's only when this names it: a key
 * that differs on the device alone is reported, not overwritten. */
#define LAYOUT_KEY_MADE ".sftca-key-made.sha256"

struct layout_target {
	char uuid[40];        /* subject CN: the peer's UUID, or the FMC's for self */
	char dir[4096];       /* directory holding the cert/key pair */
	int self;             /* the FMC's own identity in etc/sf/keys */
};

/* The builders below write a path into buf: 0, or SFTCA_ERR_INVALID when
 * it does not fit (buf then holds a cut path, never to be used). */

/* root/etc/sf/ca_root */
int layout_ca_root(const char *root, char *buf, size_t len) __attribute__((warn_unused_result));
/* The pair directory of a peer: root/var/sf/peers/UUID/certs_pushed, or the
 * peer directory itself when it already holds the pair there (older
 * layout). */
int layout_peer_pair_dir(const char *root, const char *uuid, char *buf, size_t len)
	__attribute__((warn_unused_result));
/* root/etc/sf/keys */
int layout_self_dir(const char *root, char *buf, size_t len) __attribute__((warn_unused_result));
/* dir/name */
int layout_file(const char *dir, const char *name, char *buf, size_t len)
	__attribute__((warn_unused_result));
/* A path built under root as the FMC itself names it: root taken off the front
 * ("/srv/fmc1/etc/sf/ca_root" -> "/etc/sf/ca_root", and for root "/" no
 * "//etc/..."). A path not under root is returned as it is. */
const char *layout_on_fmc(const char *root, const char *path);
/* Neither root/var/sf/peers/UUID nor the certs_pushed in it is a symbolic
 * link (a link would make root read or write keys wherever it points):
 * 0, else SFTCA_ERR_INVALID with m saying which and what to do. */
int layout_check_peer(const char *root, const char *uuid, struct sftca_msg *m)
	__attribute__((warn_unused_result));

/* root is an FMC tree: root/etc/sf/ca_root or root/var/sf/peers is a
 * directory. 0, else SFTCA_ERR_NOT_FOUND with m naming what is missing: a
 * mistyped --root must be refused before anything is created under it. */
int layout_check_tree(const char *root, struct sftca_msg *m) __attribute__((warn_unused_result));

/* The peers of a tree: canonical-UUID directories under root/var/sf/peers,
 * sorted. Free with free(). SFTCA_ERR_NOT_FOUND without a peers dir. */
int layout_list_peers(const char *root, char (**uuids)[40], size_t *n)
	__attribute__((warn_unused_result));

#endif
