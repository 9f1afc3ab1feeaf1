/*
 * version.h - the release of Concerto this tree builds.
 */
#ifndef CONCERTO_BASE_VERSION_H
#define CONCERTO_BASE_VERSION_H

#define CONCERTO_VERSION "0.1.0"

#endif
