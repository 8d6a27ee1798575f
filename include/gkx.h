/*  gkx - the public interface of libgkx, gokart-exchange's library.
    Part of gokart-exchange; MIT licence.
*/
#ifndef GKX_H_INCLUDED
#define GKX_H_INCLUDED

#include <gkx/alloc.h>
#include <gkx/audit.h>
#include <gkx/calendar.h>
#include <gkx/card.h>
#include <gkx/codec.h>
#include <gkx/conversion.h>
#include <gkx/dirmsg.h>
#include <gkx/entry.h>
#include <gkx/error.h>
#include <gkx/export.h>
#include <gkx/hlc.h>
#include <gkx/identity.h>
#include <gkx/keyfile.h>
#include <gkx/kind.h>
#include <gkx/logfile.h>
#include <gkx/merge.h>
#include <gkx/offer.h>
#include <gkx/postback.h>
#include <gkx/report.h>
#include <gkx/store.h>
#include <gkx/withdrawal.h>

#endif
