ALTER TABLE "collections" ADD COLUMN "pending_embedder" text;--> statement-breakpoint
ALTER TABLE "collections" ADD COLUMN "pending_job_id" text;--> statement-breakpoint
ALTER TABLE "collections" ADD COLUMN "previous_embedder" text;--> statement-breakpoint
ALTER TABLE "collections" ADD CONSTRAINT "collections_pending_embedder_models_id_fk" FOREIGN KEY ("pending_embedder") REFERENCES "public"."models"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "collections" ADD CONSTRAINT "collections_previous_embedder_models_id_fk" FOREIGN KEY ("previous_embedder") REFERENCES "public"."models"("id") ON DELETE no action ON UPDATE no action;