package web

import (
	"strings"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"
	"golang.org/x/time/rate"

	"levee/accounts"
)

// orderRoute is the route of placing an order, the hottest of all: the
// access log treats it apart.
const orderRoute = "/api/v1/markets/:id/orders"

// routes lists every route in one place: the API under /api/v1, the pages
// and their assets. A service left out of Deps has no routes.
func (s *Server) routes() {
	e := s.echo
	limits := s.deps.Limits.withDefaults()
	// The body limit comes before anything that could read the body (the
	// three before it do not). echo runs these after routing, so the limit
	// is the matched route's (s.upload marks the routes that take a file).
	e.Use(s.recoverPanic, s.accessLog, s.securityHeaders, s.limitBody, s.requestTimeout(limits.RequestTimeout),
		s.authenticate, s.rateLimit(limits), s.anonymousReads(limits.AnonymousReads), s.checkCSRF)
	e.Use(checkText)
	gz := middleware.GzipWithConfig(middleware.GzipConfig{MinLength: 1024})

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metricsHandler())

	api := e.Group("/api/v1")
	// Each sign-in attempt costs an argon2 hash and is a password guess: 10
	// at once, then one every 2 seconds, per client address.
	api.POST("/session", s.login, throttle(newLimiterStore(rate.Every(2*time.Second), 10, 10*time.Minute)), sameOriginJSON)
	api.DELETE("/session", s.logout)

	api.GET("/me", s.me, s.signedIn)
	api.GET("/me/tokens", s.listTokens, s.signedIn)
	api.POST("/me/tokens", s.createToken, s.signedIn)
	api.DELETE("/me/tokens/:id", s.revokeToken, s.signedIn)

	api.GET("/districts", s.listDistricts)
	api.GET("/ledger/entries", s.ledgerEntries)
	api.GET("/ledger/verify", s.ledgerVerify)

	treasurer := s.requireRole(accounts.RoleTreasurer)
	trader := s.requireRole(accounts.RoleResident)
	api.GET("/markets", s.listMarkets)
	api.POST("/markets", s.createMarket, treasurer)
	api.GET("/markets/:id", s.getMarket)
	api.GET("/markets/:id/quote", s.quote)
	api.POST(strings.TrimPrefix(orderRoute, "/api/v1"), s.placeOrder, trader)
	api.GET("/markets/:id/trades", s.marketTrades)
	api.GET("/markets/:id/history", s.marketHistory)
	api.POST("/markets/:id/close", s.closeMarket, treasurer)
	api.POST("/markets/:id/void", s.voidMarket, treasurer)
	api.GET("/me/positions", s.myPositions, s.signedIn)
	api.GET("/me/history", s.myHistory, s.signedIn)
	if s.deps.Live != nil {
		api.GET("/ws", echo.WrapHandler(s.deps.Live.hub))
	}
	if s.deps.Budgets != nil {
		api.GET("/qf/rounds", s.listRounds)
		api.POST("/qf/rounds", s.createRound, treasurer)
		api.GET("/qf/rounds/:id", s.getRound)
		api.POST("/qf/rounds/:id/projects", s.proposeProject, trader)
		api.POST("/qf/projects/:id/eligibility", s.setEligibility, treasurer)
		api.POST("/qf/projects/:id/contributions", s.contribute, trader)
		api.POST("/qf/rounds/:id/finalize", s.finalizeRound, treasurer)
		api.GET("/qf/rounds/:id/explain", s.explainMatch, s.signedIn)
		api.GET("/budget-lines", s.listBudgetLines)
	}
	if s.deps.Census != nil {
		api.GET("/census", s.getCensus)
		api.GET("/census.csv", s.censusCSV)
	}
	api.GET("/me/email", s.getEmail, s.signedIn)
	api.PUT("/me/email", s.setEmail, s.signedIn)
	api.DELETE("/me/email", s.removeEmail, s.signedIn)
	api.PUT("/me/email/categories", s.setEmailCategories, s.signedIn)
	api.POST("/email/confirm", s.confirmEmail, sameOriginJSON)
	e.GET("/email/confirm", s.pageConfirmEmail)
	if s.passwords() != nil {
		// The current password and a reset link are guesses too: throttled
		// like signing in, per client address.
		guesses := func() echo.MiddlewareFunc {
			return throttle(newLimiterStore(rate.Every(2*time.Second), 10, 10*time.Minute))
		}
		api.PUT("/me/password", s.changePassword, s.signedIn, guesses())
		api.POST("/me/sign-out-everywhere", s.signOutEverywhere, s.signedIn)
		api.POST("/password/reset", s.usePasswordReset, guesses(), sameOriginJSON)
		e.GET("/password/reset", s.pagePasswordReset, gz)
	}
	if s.deps.Evidence != nil {
		s.upload(api, "/contracts/:id/milestones/:n/evidence", s.uploadEvidence, s.signedIn)
		api.GET("/contracts/:id/milestones/:n/evidence", s.listEvidence)
		api.GET("/evidence/:id", s.downloadEvidence)
		s.upload(api, "/bids/:id/attachments", s.uploadBidAttachment, s.signedIn)
		api.GET("/bids/:id/attachments", s.listBidAttachments)
		api.GET("/bid-attachments/:id", s.downloadBidAttachment)
	}
	if s.deps.Cases != nil {
		api.POST("/markets/:id/proposal", s.proposeOutcome, treasurer)
		api.GET("/markets/:id/proposal", s.marketProposal)
		api.POST("/markets/:id/dispute", s.disputeMarket, s.signedIn)
		api.GET("/cases", s.listCases)
		api.GET("/cases/:id", s.getCase)
		api.GET("/cases/:id/draw", s.caseDraw)
		s.upload(api, "/cases/:id/evidence", s.caseEvidence, s.signedIn)
		api.GET("/cases/:id/evidence/:eid", s.caseEvidenceFile)
		api.POST("/cases/:id/commit", s.commitVote, s.signedIn)
		api.POST("/cases/:id/reveal", s.revealVote, s.signedIn)
		api.POST("/cases/:id/appeal", s.appealCase, s.signedIn)
		api.GET("/me/cases", s.myCases, s.signedIn)
		api.GET("/jurors/:id/record", s.jurorRecord)
		api.GET("/me/notifications", s.myNotifications, s.signedIn)
		api.GET("/me/jury-duty", s.juryDuty, s.signedIn)
		api.PUT("/me/jury-duty", s.setJuryDuty, s.signedIn)
	}
	if s.deps.Contracting != nil {
		api.GET("/tenders", s.listTenders)
		api.POST("/tenders", s.createTender, treasurer)
		api.GET("/tenders/:id", s.getTender)
		api.PATCH("/tenders/:id", s.editTender, treasurer)
		api.GET("/tenders/:id/bids", s.listBids)
		api.POST("/tenders/:id/bids", s.submitBid, s.signedIn)
		api.POST("/tenders/:id/close-bids", s.closeBids, treasurer)
		api.POST("/tenders/:id/award", s.awardTender, treasurer)
		api.GET("/bids/:id", s.getBid)
		api.PUT("/bids/:id", s.reviseBid, s.signedIn)
		api.DELETE("/bids/:id", s.withdrawBid, s.signedIn)
		api.GET("/contracts/:id", s.getContract)
		api.POST("/contracts/:id/milestones/:n/claim", s.claimMilestone, s.signedIn)
		if s.deps.Cases != nil {
			api.POST("/contracts/:id/milestones/:n/dispute", s.disputeMilestone, s.signedIn)
		}
		api.GET("/ocds/releases/:id", s.ocdsReleases)
		api.GET("/ocds/records/:id", s.ocdsRecords)
		api.GET("/contractors/:id/track-record", s.trackRecord)
	}

	// Pages (server-rendered; each page checks for its own service).
	e.GET("/", s.pageMarkets, gz)
	e.GET("/markets", s.pageMarkets, gz)
	e.GET("/markets/new", s.pageNewMarket, gz)
	e.GET("/markets/:id", s.pageMarket, gz)
	e.GET("/portfolio", s.pagePortfolio, gz)
	e.GET("/signin", s.pageSignIn, gz)
	e.POST("/signout", s.pageSignOut)
	e.GET("/assets/*", s.serveAsset)
	e.GET("/api/v1/session", s.sessionInfo, s.signedIn)
	e.GET("/rounds", s.pageRounds, gz)
	e.GET("/rounds/:id", s.pageRound, gz)
	e.GET("/census", s.pageCensus, gz)
	e.GET("/tenders", s.pageTenders, gz)
	e.GET("/tenders/:id", s.pageTender, gz)
	e.GET("/bids/:id", s.pageBid)
	e.GET("/contracts/:id", s.pageContract, gz)
	e.GET("/jury", s.pageJury, gz)
	e.GET("/cases", s.pageCases, gz)
	e.GET("/cases/:id", s.pageCase, gz)

	admin := api.Group("/admin", s.requireRole(accounts.RoleAdmin))
	admin.POST("/districts", s.createDistrict)
	admin.POST("/accounts", s.createAccount)
	admin.POST("/organisations/:id/members", s.addMember)
	admin.GET("/audit", s.audit)
	admin.POST("/treasury/issue", s.issueToTreasury)
	if s.adminAccounts() != nil {
		admin.GET("/accounts", s.listAccounts)
		admin.PATCH("/accounts/:id", s.changeAccount)
		if s.passwords() != nil {
			admin.POST("/accounts/:id/password-reset", s.resetPassword)
		}
		e.GET("/admin", s.pageAdmin, gz)
		e.GET("/admin/audit", s.pageAdminAudit, gz)
	}
	if s.deps.Crisis != nil {
		api.GET("/charter", s.charter)
		admin.PUT("/charter", s.foundCharter)
		api.GET("/quorum/proposals", s.listQuorumProposals)
		api.POST("/quorum/proposals", s.proposeToQuorum, s.signedIn)
		api.GET("/quorum/proposals/:id", s.getQuorumProposal)
		api.GET("/emergency", s.currentEmergency)
		api.GET("/emergencies", s.listEmergencies)
		api.POST("/emergencies", s.declareEmergency, s.requireRole(accounts.RoleSteward))
		api.GET("/emergencies/:id", s.getEmergency)
		api.POST("/emergencies/:id/acts", s.emergencyAct, s.requireRole(accounts.RoleSteward))
		api.POST("/emergencies/:id/petition", s.petition, s.requireRole(accounts.RoleResident))
		api.GET("/stewards/:id/record", s.stewardRecord)
		e.GET("/emergency", s.pageEmergency, gz)
		e.GET("/quorum", s.pageQuorum, gz)
		e.GET("/stewards/:id", s.pageSteward, gz)
		e.GET("/ledger", s.pageLedger, gz)
		api.GET("/quorum/incoming", s.incoming)
		api.POST("/quorum/incoming/:id/votes", s.answerIncoming, s.signedIn)
		api.POST("/quorum/end-requests", s.proposeEnd, s.signedIn)
		api.GET("/neighbour-petitions", s.listNeighbourPetitions)
		api.POST("/neighbours/:id/petitions", s.petitionToReplace, s.requireRole(accounts.RoleResident))
		api.POST("/neighbour-petitions/:id/signatures", s.signNeighbourPetition, s.requireRole(accounts.RoleResident))
		e.GET("/quorum/incoming", s.pageIncoming, gz)
	}
	api.GET("/audit", s.publicAudit)
	if s.deps.Node != nil {
		api.GET("/node", s.nodeIdentity)
		api.POST("/federation/statements", s.receiveStatement)
		api.GET("/federation/statements", s.listStatements)
		api.GET("/federation/refusals", s.listRefusals)
		api.GET("/federation/alarms", s.listAlarms)
		api.GET("/ledger/witnesses", s.listWitnesses)
	}

	// The API's own description: OpenAPI, AsyncAPI and their reference page.
	e.GET("/api/v1/openapi.json", serveDocument(OpenAPIDocument))
	e.GET("/api/v1/asyncapi.json", serveDocument(AsyncAPIDocument))
	e.GET("/api/docs", s.pageAPIDocs)
}
