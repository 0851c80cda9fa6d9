// Boost.URL ships as sources (Debian has no libboost_url): compiled once, here.
#include <boost/url/src.hpp>
